/*
 * hw_fuzz.c: hardware-profile files (lib/hw), format "transcode-hw/1". The input is written to a
 * scratch file and loaded with hw_profile_load; a profile that loads is then used as tc-sim uses
 * it: the configuration of AccelTran-Edge and of a few points of the AccelTran space, for
 * inference and training, and simulations on AccelTran-Edge: BERT-Tiny (fast fidelity) and a
 * one-layer model (cycle fidelity, 16 tokens), each for inference and training.
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "hw.h"
#include "simrec.h"
#include "space.h"

static struct accel_space acceltran;
static json_t *rec;   /* BERT-Tiny on AccelTran-Edge */
static json_t *small; /* one layer of width 16 on AccelTran-Edge */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct tc_error err;
	char *p = fuzz_share("space/acceltran.json");
	json_t *m, *a;

	(void)argc, (void)argv;
	tc_setprogname("hw_fuzz");
	if (accel_space_load(&acceltran, p, &err) < 0)
		die("%s", err.msg);
	free(p);
	p = fuzz_share("preset/bert-tiny.json");
	m = json_load_file(p, 0, NULL);
	free(p);
	p = fuzz_share("preset/acceltran-edge.json");
	a = json_load_file(p, 0, NULL);
	free(p);
	if (!m || !a)
		die("cannot read the presets");
	rec = json_object();
	json_object_set(rec, "model", json_object_get(m, "model"));
	json_object_set(rec, "accel", json_object_get(a, "accel"));
	small = json_object();
	json_object_set_new(
	    small, "model",
	    json_loads("{\"l\":1,\"o\":[[\"sa_sdp_8\",\"c_9_8\"]],\"h\":[16],\"f\":[[32]]}", 0, NULL));
	json_object_set(small, "accel", json_object_get(a, "accel"));
	json_decref(m);
	json_decref(a);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *path;
	struct hw_profile prof;
	struct hw_config c;
	struct tc_error err;
	struct accel a;
	struct simrec_options o = {SIM_FAST,     0,    0,          0,    128,  30522, 2,
	                           {-1, -1, -1}, NULL, &acceltran, NULL, NULL, NULL};

	if (!path)
		path = fuzz_path("hw.json");
	fuzz_write(path, data, size);
	if (hw_profile_load(&prof, path, &err) < 0)
		return 0;
	for (uint64_t i = 0; i < accel_space_size(&acceltran); i += 1234567) {
		accel_grid_point(&a, &acceltran, i);
		hw_config_init(&c, &prof, &a, 0, &err);
		hw_config_init(&c, &prof, &a, 1, &err);
	}
	o.prof = &prof;
	json_decref(simrec_eval(rec, &o, &err));
	o.training = 1;
	json_decref(simrec_eval(rec, &o, &err));
	o.fidelity = SIM_CYCLE;
	o.seq = 16;
	json_decref(simrec_eval(small, &o, &err));
	o.training = 0;
	json_decref(simrec_eval(small, &o, &err));
	return 0;
}
