/*
 * objective.c: parsing objective lists and reading their values from records. Every tool that
 * ranks, scores or plots records names its objectives this way, so they read alike in every
 * pipeline.
 */
#define _GNU_SOURCE /* strtok_r */
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"
#include "objective.h"

void
objectives_free(struct objective *o, int n)
{
	if (!o)
		return;
	for (int i = 0; i < n; i++)
		free(o[i].path);
	free(o);
}

int
objectives_parse(struct objective **out, int *n, const char *spec, struct tc_error *err)
{
	char *copy = estrdup(spec), *save = NULL, *item;
	struct objective *o = NULL;
	size_t cap = 0;
	int k = 0;

	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(item, ':');
		int max = 0;
		if (colon) {
			*colon = 0;
			if (strcmp(colon + 1, "max") == 0)
				max = 1;
			else if (strcmp(colon + 1, "min") != 0) {
				tc_error_set(err, "objective '%s': expected ':min' or ':max', got ':%s'",
				             item, colon + 1);
				goto fail;
			}
		}
		if (!*item || item[0] == '.' || item[strlen(item) - 1] == '.' || strstr(item, "..")) {
			tc_error_set(err, "objective %d: expected a dotted field path such as sim.latency_s",
			             k + 1);
			goto fail;
		}
		o = egrow(o, &cap, (size_t)k + 1, sizeof *o);
		o[k].path = estrdup(item);
		o[k].maximize = max;
		k++;
	}
	if (k == 0) {
		tc_error_set(err, "no objectives in '%s'", spec);
		goto fail;
	}
	free(copy);
	*out = o;
	*n = k;
	return 0;
fail:
	free(copy);
	objectives_free(o, k);
	return -1;
}

const char *
objective_name(const struct objective *o)
{
	static char buf[512];

	snprintf(buf, sizeof buf, "%s:%s", o->path, o->maximize ? "max" : "min");
	return buf;
}

int
objectives_get(double *v, const struct objective *o, int n, const json_t *rec, struct tc_error *err)
{
	for (int i = 0; i < n; i++)
		if (json_get_number(rec, o[i].path, &v[i], err) < 0)
			return -1;
	return 0;
}
