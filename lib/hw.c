/*
 * hw.c: hardware profiles and the area and unit costs of an accelerator.
 *
 * A profile is data (share/hw/acceltran-14nm.json): module areas and powers from synthesis,
 * buffer area, leakage and access energy per MB from CACTI, main-memory access energies and
 * bandwidths from NVMain, as the released AccelTran simulator holds them. Bandwidths are
 * converted with 8 bits per byte and 10^9 bytes per GB (the released simulator multiplied by the
 * 20-bit word width instead, and by 2^30).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw.h"
#include "jsonl.h"

const char *const hw_buffer_names[BUF_COUNT] = {"activation", "weight", "mask"};

static int
get_pos(const json_t *obj, const char *key, double *out, struct tc_error *err)
{
	if (json_get_number(obj, key, out, err) < 0)
		return -1;
	if (!(*out > 0))
		return tc_error_set(err, "field '%s': expected a positive number, got %g", key, *out);
	return 0;
}

static int
get_nonneg(const json_t *obj, const char *key, double *out, struct tc_error *err)
{
	if (json_get_number(obj, key, out, err) < 0)
		return -1;
	if (!(*out >= 0))
		return tc_error_set(err, "field '%s': expected a number >= 0, got %g", key, *out);
	return 0;
}

static int
parse_module(struct hw_module *m, const json_t *v, const char *name, struct tc_error *err)
{
	if (!json_is_object(v))
		return tc_error_set(err, "modules.%s: expected an object", name);
	if (get_nonneg(v, "area_um2", &m->area_um2, err) < 0 ||
	    get_nonneg(v, "dynamic_mw", &m->dynamic_mw, err) < 0 ||
	    get_nonneg(v, "leakage_mw", &m->leakage_mw, err) < 0)
		return tc_error_prefix(err, "modules.%s", name);
	return 0;
}

/* "softmax_16" -> 16 when the name starts with prefix; 0 otherwise. */
static int
suffix_int(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);
	long v;

	if (strncmp(name, prefix, n) != 0 || parse_long(name + n, 1, 1 << 20, &v) < 0)
		return 0;
	return (int)v;
}

static int
parse_modules(struct hw_profile *p, const json_t *mods, struct tc_error *err)
{
	static const char *const fixed[] = {"pre_sparsity",        "post_sparsity", "fifo",
	                                    "stochastic_rounding", "dataflow",      "dma"};
	struct hw_module *fixed_dst[] = {&p->pre, &p->post, &p->fifo, &p->sr, &p->dataflow, &p->dma};
	const char *key;
	json_t *v;

	if (!json_is_object(mods))
		return tc_error_set(err, "field 'modules': expected an object");
	for (int i = 0; i < 6; i++) {
		if (!(v = json_object_get(mods, fixed[i])))
			return tc_error_set(err, "missing field 'modules.%s'", fixed[i]);
		if (parse_module(fixed_dst[i], v, fixed[i], err) < 0)
			return -1;
	}
	json_object_foreach ((json_t *)mods, key, v) {
		char act[8];
		int macs, t, k = 0, n = 0;
		while (k < 6 && strcmp(key, fixed[k]) != 0)
			k++;
		if (k < 6)
			continue;
		if (sscanf(key, "mac_lane_%7[a-z]_%d%n", act, &macs, &n) == 2 && !key[n] && macs > 0 &&
		    (strcmp(act, "relu") == 0 || strcmp(act, "gelu") == 0)) {
			if (p->nlane == HW_MAX_LANE_KINDS)
				return tc_error_set(err, "modules: more than %d MAC lanes",
				                    HW_MAX_LANE_KINDS);
			strcpy(p->lane_act[p->nlane], act);
			p->lane_macs[p->nlane] = macs;
			if (parse_module(&p->lane[p->nlane++], v, key, err) < 0)
				return -1;
		} else if ((t = suffix_int(key, "softmax_"))) {
			if (p->nsm == HW_MAX_TILE_KINDS)
				return tc_error_set(err, "modules: more than %d softmax modules",
				                    HW_MAX_TILE_KINDS);
			p->sm_tile[p->nsm] = t;
			if (parse_module(&p->sm[p->nsm++], v, key, err) < 0)
				return -1;
		} else if ((t = suffix_int(key, "layernorm_"))) {
			if (p->nln == HW_MAX_TILE_KINDS)
				return tc_error_set(err, "modules: more than %d layer-norm modules",
				                    HW_MAX_TILE_KINDS);
			p->ln_tile[p->nln] = t;
			if (parse_module(&p->ln[p->nln++], v, key, err) < 0)
				return -1;
		} else {
			return tc_error_set(
			    err,
			    "modules.%s: unknown module (expected mac_lane_<relu|gelu>_<macs>, "
			    "softmax_<tile>, layernorm_<tile> or one of pre_sparsity, post_sparsity, "
			    "fifo, stochastic_rounding, dataflow, dma)",
			    key);
		}
	}
	if (!p->nlane || !p->nsm || !p->nln)
		return tc_error_set(err,
		                    "modules: needs at least one MAC lane, softmax and layer-norm module");
	return 0;
}

static int
parse_profile(struct hw_profile *p, const json_t *root, struct tc_error *err)
{
	const json_t *bufs, *mems, *sp, *opt, *v;
	const char *s, *key;

	memset(p, 0, sizeof *p);
	if (!json_is_object(root))
		return tc_error_set(err, "expected a JSON object");
	if (json_get_string(root, "format", &s, err) < 0)
		return -1;
	if (strcmp(s, "transcode-hw/1") != 0)
		return tc_error_set(err, "field 'format': expected 'transcode-hw/1', got '%s'", s);
	if (json_get_string(root, "name", &s, err) < 0)
		return -1;
	snprintf(p->name, sizeof p->name, "%s", s);
	if (get_pos(root, "clock_mhz", &p->clock_mhz, err) < 0)
		return -1;
	{
		long w, m, f, b;
		if (json_get_int(root, "word_bits", 1, 64, &w, err) < 0 ||
		    json_get_int(root, "mask_bits_per_element", 0, 8, &m, err) < 0 ||
		    json_get_int(root, "fifo_words_per_cycle", 1, 4096, &f, err) < 0 ||
		    json_get_int(root, "block_elements", 1, 4096, &b, err) < 0)
			return -1;
		p->word_bits = (int)w;
		p->mask_bits = (int)m;
		p->fifo_words = (int)f;
		p->block_elements = (int)b;
	}
	if (get_pos(root, "softmax_elements_per_cycle", &p->softmax_rate, err) < 0 ||
	    get_pos(root, "layernorm_elements_per_cycle", &p->layernorm_rate, err) < 0)
		return -1;
	if (!(sp = json_object_get(root, "sparsity")))
		return tc_error_set(err, "missing field 'sparsity'");
	{
		static const char *const cls[3] = {"sparsity.activation", "sparsity.weight",
		                                   "sparsity.gradient"};
		for (int i = 0; i < 3; i++) {
			if (json_get_number(root, cls[i], &p->sparsity[i], err) < 0)
				return -1;
			if (!(p->sparsity[i] >= 0 && p->sparsity[i] < 1))
				return tc_error_set(err, "field '%s': expected a fraction in [0, 1), got %g",
				                    cls[i], p->sparsity[i]);
		}
	}
	if (!(opt = json_object_get(root, "optimizer")))
		return tc_error_set(err, "missing field 'optimizer'");
	{
		long st, ops;
		if (json_get_int(root, "optimizer.state_per_param", 0, 16, &st, err) < 0 ||
		    json_get_int(root, "optimizer.ops_per_param", 1, 64, &ops, err) < 0)
			return -1;
		p->opt_state = (int)st;
		p->opt_ops = (int)ops;
	}
	if (parse_modules(p, json_object_get(root, "modules"), err) < 0)
		return -1;
	if (!(bufs = json_object_get(root, "buffers")) || !json_is_object(bufs))
		return tc_error_set(err, "field 'buffers': expected an object");
	for (int b = 0; b < BUF_COUNT; b++) {
		struct hw_buffer *hb = &p->buf[b];
		if (!(v = json_object_get(bufs, hw_buffer_names[b])))
			return tc_error_set(err, "missing field 'buffers.%s'", hw_buffer_names[b]);
		if (get_nonneg(v, "area_um2_per_mb", &hb->area_um2_per_mb, err) < 0 ||
		    get_nonneg(v, "leakage_mw_per_mb", &hb->leakage_mw_per_mb, err) < 0 ||
		    get_nonneg(v, "access_nj_per_block_per_sqrt_mb", &hb->access_nj_per_block_per_sqrt_mb,
		               err) < 0 ||
		    get_pos(v, "bandwidth_gbps", &hb->bandwidth_gbps, err) < 0)
			return tc_error_prefix(err, "buffers.%s", hw_buffer_names[b]);
	}
	if (!(mems = json_object_get(root, "memories")) || !json_is_object(mems))
		return tc_error_set(err, "field 'memories': expected an object");
	json_object_foreach ((json_t *)mems, key, v) {
		if (p->nmem == HW_MAX_MEMORIES)
			return tc_error_set(err, "memories: more than %d", HW_MAX_MEMORIES);
		if (strlen(key) >= ACCEL_NAME_MAX)
			return tc_error_set(err, "memories.%s: name too long", key);
		if (!json_is_object(v))
			return tc_error_set(err, "memories.%s: expected an object", key);
		if (get_nonneg(v, "access_nj_per_block", &p->mem_nj_per_block[p->nmem], err) < 0 ||
		    get_pos(v, "bandwidth_gbps", &p->mem_gbps[p->nmem], err) < 0)
			return tc_error_prefix(err, "memories.%s", key);
		strcpy(p->mem_name[p->nmem++], key);
	}
	return 0;
}

int
hw_profile_load(struct hw_profile *p, const char *path, struct tc_error *err)
{
	json_error_t je;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	int rc;

	if (!root) {
		if (je.line < 1)
			return tc_error_set(err, "cannot read hardware profile '%s': %s", path, je.text);
		return tc_error_set(err, "hardware profile '%s':%d: malformed JSON: %s", path, je.line,
		                    je.text);
	}
	rc = parse_profile(p, root, err);
	json_decref(root);
	if (rc < 0)
		return tc_error_prefix(err, "hardware profile '%s'", path);
	return 0;
}

static const struct hw_module *
find_tile_module(const int *tiles, const struct hw_module *mods, int n, int t)
{
	for (int i = 0; i < n; i++)
		if (tiles[i] == t)
			return &mods[i];
	return NULL;
}

int
hw_config_init(struct hw_config *c, const struct hw_profile *p, const struct accel *a, int training,
               struct tc_error *err)
{
	const struct hw_module *lane = NULL, *sm, *ln;
	double f = p->clock_mhz, bw_buf, perlane;
	struct hw_area *ar = &c->area;
	int m;

	memset(c, 0, sizeof *c);
	c->prof = p;
	c->training = training;
	for (int i = 0; i < p->nlane; i++)
		if (p->lane_macs[i] == a->macs_per_lane && strcmp(p->lane_act[i], a->activation) == 0)
			lane = &p->lane[i];
	if (!lane)
		return tc_error_set(err, "profile '%s' has no MAC lane with %d multipliers and %s", p->name,
		                    a->macs_per_lane, a->activation);
	if (!(sm = find_tile_module(p->sm_tile, p->sm, p->nsm, a->tile_x)))
		return tc_error_set(err, "profile '%s' has no softmax module for tile %d", p->name,
		                    a->tile_x);
	if (!(ln = find_tile_module(p->ln_tile, p->ln, p->nln, a->tile_x)))
		return tc_error_set(err, "profile '%s' has no layer-norm module for tile %d", p->name,
		                    a->tile_x);
	for (m = 0; m < p->nmem && strcmp(p->mem_name[m], a->memory) != 0; m++)
		;
	if (m == p->nmem)
		return tc_error_set(err, "profile '%s' has no main memory '%s'", p->name, a->memory);

	c->pes = a->pes;
	c->lanes = (long)a->pes * a->lanes_per_pe;
	c->softmax = (long)a->pes * a->softmax_per_pe;
	c->layernorm = a->pes;
	c->macs = a->macs_per_lane;
	c->tile_b = a->tile_b;
	c->tile_x = a->tile_x;
	c->tile_y = a->tile_y;
	c->fifo_bits = p->fifo_words * p->word_bits;
	{
		const double mb[BUF_COUNT] = {a->act_buffer_mb, a->weight_buffer_mb, a->mask_buffer_mb};
		for (int b = 0; b < BUF_COUNT; b++) {
			c->buf_bits[b] = mb[b] * 8.0 * 1024 * 1024;
			c->buf_nj_per_block[b] = p->buf[b].access_nj_per_block_per_sqrt_mb * sqrt(mb[b]);
			c->buf_leak_nj_per_cycle[b] = p->buf[b].leakage_mw_per_mb * mb[b] / f;
			ar->buffer[b] = p->buf[b].area_um2_per_mb * mb[b] * 1e-6;
		}
	}
	bw_buf = fmin(p->buf[BUF_ACT].bandwidth_gbps, p->buf[BUF_WEIGHT].bandwidth_gbps);
	c->mem_bits_per_cycle = fmin(p->mem_gbps[m], bw_buf) * 8e9 / (f * 1e6);
	c->mem_nj_per_block = p->mem_nj_per_block[m];

	c->lane_dyn = lane->dynamic_mw / f;
	c->lane_leak = lane->leakage_mw / f;
	c->sparsity_dyn = (p->pre.dynamic_mw + p->post.dynamic_mw) / f;
	c->sparsity_leak = (p->pre.leakage_mw + p->post.leakage_mw) / f;
	c->sr_dyn = training ? p->sr.dynamic_mw / f : 0;
	c->sr_leak = training ? p->sr.leakage_mw / f : 0;
	c->fifo_dyn = p->fifo.dynamic_mw / f;
	c->fifo_leak = p->fifo.leakage_mw / f;
	c->sm_dyn = sm->dynamic_mw / f;
	c->sm_leak = sm->leakage_mw / f;
	c->ln_dyn = ln->dynamic_mw / f;
	c->ln_leak = ln->leakage_mw / f;
	c->ctl_dyn = (p->dataflow.dynamic_mw + p->dma.dynamic_mw) / f;
	c->ctl_leak = (p->dataflow.leakage_mw + p->dma.leakage_mw) / f;

	perlane = 1e-6 * (double)c->lanes;
	ar->mac_lanes = lane->area_um2 * perlane;
	ar->fifo = p->fifo.area_um2 * perlane;
	ar->sparsity = (p->pre.area_um2 + p->post.area_um2) * perlane;
	ar->stochastic_rounding = training ? p->sr.area_um2 * perlane : 0;
	ar->softmax = sm->area_um2 * 1e-6 * (double)c->softmax;
	ar->layernorm = ln->area_um2 * 1e-6 * (double)c->layernorm;
	ar->dataflow = p->dataflow.area_um2 * 1e-6 * (double)c->pes;
	ar->dma = p->dma.area_um2 * 1e-6 * (double)c->pes;
	ar->pes = ar->mac_lanes + ar->fifo + ar->sparsity + ar->stochastic_rounding + ar->softmax +
	          ar->layernorm + ar->dataflow + ar->dma;
	ar->buffers = ar->buffer[BUF_ACT] + ar->buffer[BUF_WEIGHT] + ar->buffer[BUF_MASK];
	ar->total = ar->pes + ar->buffers;
	return 0;
}
