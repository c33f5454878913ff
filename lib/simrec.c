/*
 * simrec.c: records to simulations and back. The "sim" object's fields are tc-sim(1)'s output
 * contract; every number is finite (json_number refuses anything else).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"
#include "simrec.h"

static const char *const sp_names[3] = {"activation", "weight", "gradient"};
static const char *const src_names[4] = {"profile", "option", "train", "prune"};

static int
fraction_at(const json_t *rec, const char *path, double *out, int *found, struct tc_error *err)
{
	const json_t *v = json_path_get(rec, path);

	*found = 0;
	if (!v)
		return 0;
	if (json_as_number(v, path, out, err) < 0)
		return -1;
	if (!(*out >= 0 && *out < 1))
		return tc_error_set(err, "field '%s': expected a fraction in [0, 1), got %g", path, *out);
	*found = 1;
	return 0;
}

int
simrec_sparsity(double *sp, int *src, const json_t *rec, const struct simrec_options *o, struct tc_error *err)
{
	static const char *const prune_path[3] = {"prune.sparsity.activation", "prune.sparsity.weight", NULL};
	static const char *const train_path[3] = {"train.sparsity.activation", NULL,
	                                          "train.sparsity.gradient"};

	for (int i = 0; i < 3; i++) {
		int found = 0;
		sp[i] = o->prof->sparsity[i];
		src[i] = SP_PROFILE;
		if (o->sparsity[i] >= 0) {
			sp[i] = o->sparsity[i];
			src[i] = SP_OPTION;
		}
		if (train_path[i] && fraction_at(rec, train_path[i], &sp[i], &found, err) < 0)
			return -1;
		if (found)
			src[i] = SP_TRAIN;
		found = 0;
		if (prune_path[i] && fraction_at(rec, prune_path[i], &sp[i], &found, err) < 0)
			return -1;
		if (found)
			src[i] = SP_PRUNE;
	}
	return 0;
}

/* Results carry 9 significant digits: more than the model is worth, few enough that golden
 * outputs do not depend on the last bits of floating-point evaluation order. */
static double
round9(double v)
{
	int e;
	double p;

	if (!isfinite(v) || v == 0)
		return 0;
	e = (int)floor(log10(fabs(v)));
	if (e > 8 + 22 || e < 8 - 22) { /* beyond exact powers of ten: rare, slow, exact */
		char buf[32];
		snprintf(buf, sizeof buf, "%.9g", v);
		return strtod(buf, NULL);
	}
	/* 10^|8 - e| is exact, and one correctly rounded division or product gives the double nearest
	 * to the 9-digit decimal */
	if (e <= 8) {
		p = pow(10, 8 - e);
		return nearbyint(v * p) / p;
	}
	p = pow(10, e - 8);
	return nearbyint(v / p) * p;
}

static void
set(json_t *obj, const char *key, double v)
{
	json_object_set_new_nocheck(obj, key, json_number(round9(v)));
}

static json_t *
area_json(const struct hw_area *a)
{
	json_t *o = json_object();

	set(o, "mac_lanes", a->mac_lanes);
	set(o, "fifo", a->fifo);
	set(o, "sparsity", a->sparsity);
	set(o, "stochastic_rounding", a->stochastic_rounding);
	set(o, "softmax", a->softmax);
	set(o, "layernorm", a->layernorm);
	set(o, "dataflow", a->dataflow);
	set(o, "dma", a->dma);
	set(o, "activation_buffer", a->buffer[BUF_ACT]);
	set(o, "weight_buffer", a->buffer[BUF_WEIGHT]);
	set(o, "mask_buffer", a->buffer[BUF_MASK]);
	return o;
}

json_t *
simrec_json(const struct sim_result *r, const struct hw_config *c, const struct simrec_options *o, long batch,
            const double *sp, const int *src, const char *dataflow)
{
	json_t *s = json_object(), *spo = json_object(), *from = json_object();

	json_object_set_new_nocheck(s, "mode", json_string(o->training ? "training" : "inference"));
	json_object_set_new_nocheck(s, "fidelity", json_string(o->fidelity == SIM_CYCLE ? "cycle" : "fast"));
	json_object_set_new_nocheck(s, "hw", json_string(o->prof->name));
	json_object_set_new_nocheck(s, "batch", json_integer(batch));
	json_object_set_new_nocheck(s, "seq", json_integer(o->seq));
	json_object_set_new_nocheck(s, "dataflow", json_string(dataflow));
	for (int i = 0; i < 3; i++) {
		set(spo, sp_names[i], sp[i]);
		json_object_set_new_nocheck(from, sp_names[i], json_string(src_names[src[i]]));
	}
	json_object_set_new_nocheck(spo, "from", from);
	json_object_set_new_nocheck(s, "sparsity", spo);
	json_object_set_new_nocheck(s, "feasible", json_boolean(r->feasible));
	if (!r->feasible)
		json_object_set_new_nocheck(s, "reason", json_string(r->reason));
	if (r->feasible && o->brief) {
		set(s, "cycles", r->cycles);
		set(s, "latency_s", r->latency_s);
		set(s, "energy_j", r->energy_j);
	} else if (r->feasible) {
		json_t *dyn = json_object(), *leak = json_object(), *eb = json_object(), *u = json_object();
		json_t *st = json_object(), *tr = json_object(), *pk = json_object();
		double mb = 8.0 * 1048576;
		set(s, "cycles", r->cycles);
		set(s, "latency_s", r->latency_s);
		set(s, "throughput_seq_s", r->latency_s > 0 ? batch / r->latency_s : 0);
		set(s, "energy_j", r->energy_j);
		for (int e = 0; e < E_COUNT; e++) {
			set(dyn, sim_part_names[e], r->dyn_nj[e] * 1e-9);
			if (e != E_MEMORY)
				set(leak, sim_part_names[e], r->leak_nj[e] * 1e-9);
		}
		json_object_set_new_nocheck(eb, "dynamic", dyn);
		json_object_set_new_nocheck(eb, "leakage", leak);
		json_object_set_new_nocheck(s, "energy_breakdown_j", eb);
		{
			json_t *un = json_object();
			json_object_set_new_nocheck(un, "mac_lanes", json_integer(r->units[UNIT_MAC]));
			json_object_set_new_nocheck(un, "softmax", json_integer(r->units[UNIT_SOFTMAX]));
			json_object_set_new_nocheck(un, "layernorm", json_integer(r->units[UNIT_LN]));
			json_object_set_new_nocheck(s, "units", un);
		}
		set(u, "mac_lanes", r->util[UNIT_MAC]);
		set(u, "softmax", r->util[UNIT_SOFTMAX]);
		set(u, "layernorm", r->util[UNIT_LN]);
		set(u, "main_memory", r->cycles > 0 ? r->mem_busy / r->cycles : 0);
		json_object_set_new_nocheck(s, "utilisation", u);
		for (int k = 0; k < ST_COUNT; k++)
			set(st, sim_stall_names[k], r->stalls[k]);
		json_object_set_new_nocheck(s, "stalls", st);
		set(tr, "main_memory_read", r->mem_read_bits / mb);
		set(tr, "main_memory_write", r->mem_write_bits / mb);
		set(tr, "buffer_read", r->buf_read_bits / mb);
		set(tr, "buffer_write", r->buf_write_bits / mb);
		json_object_set_new_nocheck(s, "traffic_mb", tr);
		for (int b = 0; b < BUF_COUNT; b++) {
			char key[32];
			snprintf(key, sizeof key, "%s_buffer", hw_buffer_names[b]);
			set(pk, key, r->peak_bits[b] / mb);
		}
		json_object_set_new_nocheck(s, "peak_occupancy_mb", pk);
		json_object_set_new_nocheck(s, "ops", json_integer(r->ops));
		json_object_set_new_nocheck(s, "tiles", json_integer(r->tiles));
		set(s, "macs", r->macs);
	}
	set(s, "area_mm2", c->area.total);
	if (!o->brief)
		json_object_set_new_nocheck(s, "area_breakdown_mm2", area_json(&c->area));
	return s;
}

json_t *
simrec_eval(const json_t *rec, const struct simrec_options *o, struct tc_error *err)
{
	struct model m;
	struct accel a;
	struct workload w;
	struct wl_options wo;
	struct hw_config c;
	struct sim_options so;
	struct sim_result r;
	double sp[3];
	int src[3];
	json_t *out;

	if (model_from_json(&m, json_object_get(rec, "model"), o->mspace, err) < 0 ||
	    accel_from_json(&a, json_object_get(rec, "accel"), o->aspace, err) < 0)
		return NULL;
	if (simrec_sparsity(sp, src, rec, o, err) < 0)
		return NULL;
	if (o->batch > 0 && o->batch < a.tile_b)
		return tc_error_set(err, "option '--batch': %ld is smaller than the batch tile %d", o->batch,
		                    a.tile_b),
		       NULL;
	if (hw_config_init(&c, o->prof, &a, o->training, err) < 0)
		return NULL;
	wo = (struct wl_options){o->batch > 0 ? o->batch : a.batch,
	                         o->seq,
	                         o->vocab,
	                         o->classes,
	                         o->training,
	                         o->prof->opt_state,
	                         o->prof->opt_ops,
	                         o->trace != NULL};
	if (workload_build(&w, &m, &wo, err) < 0)
		return NULL;
	so.fidelity = o->fidelity;
	memcpy(so.sparsity, sp, sizeof sp);
	snprintf(so.dataflow, sizeof so.dataflow, "%s", a.dataflow);
	so.trace = o->trace;
	so.trace_ctx = o->trace_ctx;
	if (sim_run(&r, &w, &c, &so, err) < 0) {
		workload_release(&w);
		return NULL;
	}
	out = simrec_json(&r, &c, o, wo.batch, sp, src, a.dataflow);
	workload_release(&w);
	return out;
}
