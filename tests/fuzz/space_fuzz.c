/*
 * space_fuzz.c: design-space files (lib/space), format "transcode-space/1". The input is written
 * to a scratch file and loaded as a model space, as an accelerator space and by space_kind; the
 * file's "kind" decides which can succeed. A space that loads must keep the invariants space.c
 * states, which the samplers and encoders rely on without checking: every point decoded from
 * sampling coordinates, from the grid or from its integer encoding is valid in the space, and
 * encoding then decoding gives the point back. A broken invariant aborts.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "rng.h"
#include "space.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void __attribute__((noreturn)) fail(const char *what, const struct tc_error *err)
{
	fprintf(stderr, "space invariant broken: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
	abort();
}

static void
same_model(const struct model *a, const struct model *b, const char *what)
{
	char x[32768], y[32768];

	model_canonical(x, sizeof x, a);
	model_canonical(y, sizeof y, b);
	if (strcmp(x, y) != 0)
		fail(what, NULL);
}

static void
model_space_use(const struct model_space *s, uint64_t seed)
{
	double u[1 + MODEL_MAX_LAYERS * (4 + MODEL_MAX_FF)], v[1 + MODEL_MAX_LAYERS * (4 + MODEL_MAX_FF)];
	int64_t e[1 + 3 * MODEL_MAX_LAYERS], lo[1 + 3 * MODEL_MAX_LAYERS], hi[1 + 3 * MODEL_MAX_LAYERS];
	int levels[1 + MODEL_MAX_LAYERS * (4 + MODEL_MAX_FF)], dim = model_sample_dim(s);
	double x[1 + 3 * MODEL_MAX_LAYERS];
	struct model m, back;
	struct tc_error err;
	struct rng r;

	if (!(isfinite(model_space_size(s)) && model_space_size(s) >= 1))
		fail("model_space_size is not a finite count", NULL);
	model_unit_levels(levels, s);
	model_encode_bounds(lo, hi, s);
	rng_seed(&r, seed);
	for (int k = 0; k < 4; k++) {
		for (int i = 0; i < dim; i++)
			u[i] = k == 0 ? 0 : k == 1 ? 0.999999999 : rng_uniform(&r);
		model_decode(&m, s, u);
		if (model_check(&m, s, &err) < 0)
			fail("model_decode gave a point outside the space", &err);
		model_unit_encode(v, &m, s);
		model_decode(&back, s, v);
		same_model(&m, &back, "model_unit_encode does not invert model_decode");
		model_encode(e, &m, s);
		for (int i = 0; i < model_encode_dim(s); i++)
			if (e[i] < lo[i] || e[i] > hi[i])
				fail("model_encode outside model_encode_bounds", NULL);
		if (model_decode_encoding(&back, s, e, &err) < 0)
			fail("model_decode_encoding refused model_encode's output", &err);
		same_model(&m, &back, "model_decode_encoding does not invert model_encode");
		for (int i = 0; i < model_encode_dim(s); i++)
			x[i] = (double)e[i] + (rng_uniform(&r) - 0.5) * 0.9;
		model_snap(&back, s, x);
		same_model(&m, &back, "model_snap moved a point less than half a step away");
		json_decref(model_encoding_json(&m, s));
	}
}

static void
accel_space_use(const struct accel_space *s, uint64_t seed)
{
	double u[AP_COUNT], e[ACCEL_ENC_DIM], lo[ACCEL_ENC_DIM], hi[ACCEL_ENC_DIM], exact = 1;
	int levels[AP_COUNT], dim = accel_sample_dim(s);
	uint64_t size = accel_space_size(s);
	struct tc_error err;
	struct accel a, b;
	struct rng r;
	char x[512], y[512];

	for (int p = 0; p < AP_COUNT; p++)
		if (s->fixed[p] < 0 && !(s->square_tiles && p == AP_TILE_Y))
			exact *= s->nval[p];
	if (size == 0 || (double)size != exact)
		fail("accel_space_size is not the number of points", NULL);
	accel_unit_levels(levels, s);
	accel_encode_bounds(lo, hi, s);
	rng_seed(&r, seed);
	for (int k = 0; k < 4; k++) {
		for (int i = 0; i < dim; i++)
			u[i] = k == 0 ? 0 : k == 1 ? 0.999999999 : rng_uniform(&r);
		accel_decode(&a, s, u);
		if (accel_check(&a, s, &err) < 0)
			fail("accel_decode gave a point outside the space", &err);
		accel_unit_encode(u, &a, s);
		accel_decode(&b, s, u);
		accel_canonical(x, sizeof x, &a);
		accel_canonical(y, sizeof y, &b);
		if (strcmp(x, y) != 0)
			fail("accel_unit_encode does not invert accel_decode", NULL);
		accel_encode(e, &a, s);
		for (int i = 0; i < ACCEL_ENC_DIM; i++)
			if (!(e[i] >= lo[i] && e[i] <= hi[i]))
				fail("accel_encode outside accel_encode_bounds", NULL);
		accel_snap(&a, s, e);
		if (accel_check(&a, s, &err) < 0)
			fail("accel_snap gave a point outside the space", &err);
		accel_grid_point(&a, s, k == 0 ? 0 : k == 1 ? size - 1 : rng_below(&r, size));
		if (accel_check(&a, s, &err) < 0)
			fail("accel_grid_point gave a point outside the space", &err);
		json_decref(accel_encoding_json(&a, s));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *path;
	struct model_space ms;
	struct accel_space as;
	struct tc_error err;
	const char *mp = NULL, *ap = NULL;
	char kind[8];
	uint64_t seed = tc_hash_final(tc_hash_bytes(TC_HASH_INIT, data, size));

	if (!path)
		path = fuzz_path("space.json");
	fuzz_write(path, data, size);
	if (model_space_load(&ms, path, &err) == 0)
		model_space_use(&ms, seed);
	if (accel_space_load(&as, path, &err) == 0)
		accel_space_use(&as, seed);
	space_kind(path, kind, sizeof kind, &err);
	space_file_route(path, &mp, &ap, &err);
	return 0;
}
