/*
 * objective.h: objectives named by dotted record paths with a direction, as written on command
 * lines: "sim.latency_s:min,sim.energy_j:min,train.accuracy:max" (the direction defaults to min).
 *
 * Ownership: objectives_parse allocates the array and its paths; objectives_free releases both.
 */
#ifndef TC_OBJECTIVE_H
#define TC_OBJECTIVE_H

#include <jansson.h>

#include "util.h"

struct objective {
	char *path;
	int maximize;
};

/* Parse spec into a new array of *n objectives. Returns 0, or -1 with the offending item named. */
int objectives_parse(struct objective **out, int *n, const char *spec, struct tc_error *err);
void objectives_free(struct objective *o, int n);
/* "path:min" for objective i, in a static buffer. */
const char *objective_name(const struct objective *o);

/*
 * The n objective values of rec, as stored (not negated), into v. Returns 0, or -1 with "missing
 * field 'p'" or "field 'p': expected a number, got ..." in err (no position).
 */
int objectives_get(double *v, const struct objective *o, int n, const json_t *rec, struct tc_error *err);

#endif
