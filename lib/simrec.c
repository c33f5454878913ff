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
	static const char *const prune_path[3] = {"prune.sparsity.activation", "prune.sparsity.weight",
	                                          "prune.sparsity.gradient"};
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
set(struct jsonl_out *w, const char *key, double v)
{
	jw_number(w, key, round9(v));
}

static void
area_write(struct jsonl_out *w, const char *key, const struct hw_area *a)
{
	jw_begin(w, key);
	set(w, "mac_lanes", a->mac_lanes);
	set(w, "fifo", a->fifo);
	set(w, "sparsity", a->sparsity);
	set(w, "stochastic_rounding", a->stochastic_rounding);
	set(w, "softmax", a->softmax);
	set(w, "layernorm", a->layernorm);
	set(w, "dataflow", a->dataflow);
	set(w, "dma", a->dma);
	set(w, "activation_buffer", a->buffer[BUF_ACT]);
	set(w, "weight_buffer", a->buffer[BUF_WEIGHT]);
	set(w, "mask_buffer", a->buffer[BUF_MASK]);
	jw_end(w);
}

void
simrec_write(struct jsonl_out *w, const struct sim_result *r, const struct hw_config *c,
             const struct simrec_options *o, long batch, const double *sp, const int *src,
             const char *dataflow)
{
	jw_begin(w, NULL);
	jw_string(w, "mode", o->training ? "training" : "inference");
	jw_string(w, "fidelity", o->fidelity == SIM_CYCLE ? "cycle" : "fast");
	jw_string(w, "hw", o->prof->name);
	jw_int(w, "batch", batch);
	jw_int(w, "seq", o->seq);
	jw_string(w, "dataflow", dataflow);
	jw_begin(w, "sparsity");
	for (int i = 0; i < 3; i++)
		set(w, sp_names[i], sp[i]);
	jw_begin(w, "from");
	for (int i = 0; i < 3; i++)
		jw_string(w, sp_names[i], src_names[src[i]]);
	jw_end(w);
	jw_end(w);
	jw_bool(w, "feasible", r->feasible);
	if (!r->feasible)
		jw_string(w, "reason", r->reason);
	if (r->feasible && o->brief) {
		set(w, "cycles", r->cycles);
		set(w, "latency_s", r->latency_s);
		set(w, "energy_j", r->energy_j);
	} else if (r->feasible) {
		double mb = 8.0 * 1048576;
		set(w, "cycles", r->cycles);
		set(w, "latency_s", r->latency_s);
		set(w, "throughput_seq_s", r->latency_s > 0 ? batch / r->latency_s : 0);
		set(w, "energy_j", r->energy_j);
		jw_begin(w, "energy_breakdown_j");
		jw_begin(w, "dynamic");
		for (int e = 0; e < E_COUNT; e++)
			set(w, sim_part_names[e], r->dyn_nj[e] * 1e-9);
		jw_end(w);
		jw_begin(w, "leakage");
		for (int e = 0; e < E_COUNT; e++)
			if (e != E_MEMORY)
				set(w, sim_part_names[e], r->leak_nj[e] * 1e-9);
		jw_end(w);
		jw_end(w);
		jw_begin(w, "units");
		jw_int(w, "mac_lanes", r->units[UNIT_MAC]);
		jw_int(w, "softmax", r->units[UNIT_SOFTMAX]);
		jw_int(w, "layernorm", r->units[UNIT_LN]);
		jw_end(w);
		jw_begin(w, "utilisation");
		set(w, "mac_lanes", r->util[UNIT_MAC]);
		set(w, "softmax", r->util[UNIT_SOFTMAX]);
		set(w, "layernorm", r->util[UNIT_LN]);
		set(w, "main_memory", r->cycles > 0 ? r->mem_busy / r->cycles : 0);
		jw_end(w);
		jw_begin(w, "stalls");
		for (int k = 0; k < ST_COUNT; k++)
			set(w, sim_stall_names[k], r->stalls[k]);
		jw_end(w);
		jw_begin(w, "traffic_mb");
		set(w, "main_memory_read", r->mem_read_bits / mb);
		set(w, "main_memory_write", r->mem_write_bits / mb);
		set(w, "buffer_read", r->buf_read_bits / mb);
		set(w, "buffer_write", r->buf_write_bits / mb);
		jw_end(w);
		jw_begin(w, "peak_occupancy_mb");
		for (int b = 0; b < BUF_COUNT; b++) {
			char key[32];
			snprintf(key, sizeof key, "%s_buffer", hw_buffer_names[b]);
			set(w, key, r->peak_bits[b] / mb);
		}
		jw_end(w);
		jw_int(w, "ops", r->ops);
		jw_int(w, "tiles", r->tiles);
		set(w, "macs", r->macs);
	}
	set(w, "area_mm2", c->area.total);
	if (!o->brief)
		area_write(w, "area_breakdown_mm2", &c->area);
	jw_end(w);
}

int
simrec_run(const json_t *rec, const struct simrec_options *o, struct jsonl_out *out, struct tc_error *err)
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

	if (model_from_json(&m, json_object_get(rec, "model"), o->mspace, err) < 0 ||
	    accel_from_json(&a, json_object_get(rec, "accel"), o->aspace, err) < 0)
		return -1;
	if (simrec_sparsity(sp, src, rec, o, err) < 0)
		return -1;
	if (o->batch > 0 && o->batch < a.tile_b)
		return tc_error_set(err, "option '--batch': %ld is smaller than the batch tile %d", o->batch,
		                    a.tile_b);
	if (hw_config_init(&c, o->prof, &a, o->training, err) < 0)
		return -1;
	wo = (struct wl_options){o->batch > 0 ? o->batch : a.batch,
	                         o->seq,
	                         o->vocab,
	                         o->classes,
	                         o->training,
	                         o->prof->opt_state,
	                         o->prof->opt_ops,
	                         o->trace != NULL};
	if (workload_build(&w, &m, &wo, err) < 0)
		return -1;
	so.fidelity = o->fidelity;
	memcpy(so.sparsity, sp, sizeof sp);
	snprintf(so.dataflow, sizeof so.dataflow, "%s", a.dataflow);
	so.trace = o->trace;
	so.trace_ctx = o->trace_ctx;
	if (sim_run(&r, &w, &c, &so, err) < 0) {
		workload_release(&w);
		return -1;
	}
	workload_release(&w);
	out->len = 0;
	out->depth = out->err = 0;
	simrec_write(out, &r, &c, o, wo.batch, sp, src, a.dataflow);
	if (out->err)
		return tc_error_set(err, "the result cannot be encoded");
	return 0;
}

json_t *
simrec_eval(const json_t *rec, const struct simrec_options *o, struct tc_error *err)
{
	struct jsonl_out w = {0};
	json_t *sim = NULL;

	if (simrec_run(rec, o, &w, err) == 0 && !(sim = json_loadb(w.p, w.len, 0, NULL)))
		tc_error_set(err, "the result cannot be decoded");
	free(w.p);
	return sim;
}
