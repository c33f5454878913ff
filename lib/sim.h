/*
 * sim.h: ELECTOR, a simulator of a workload (workload.h) on an accelerator (hw.h): latency,
 * energy by module, utilisation, stalls and traffic, at two fidelities.
 *
 * Ownership: sim_run fills a caller-owned struct sim_result and keeps nothing.
 *
 * Both fidelities share one cost model and one scheduler; they differ in what they schedule.
 * SIM_CYCLE splits every operation into jobs (contiguous runs of tiles in the dataflow's loop
 * order), costs every tile of every job (operand fetches through the lane FIFO unless the
 * previous tile of the job reuses them, multiplications skipped by the pre-compute sparsity
 * module, partial sums, result write-back) and runs an event-driven simulation of jobs on MAC
 * lanes, softmax and layer-norm modules, tensor transfers on the main-memory channel, and the
 * activation, weight and mask buffers with capacity and eviction, jumping from event to event.
 * SIM_FAST costs each operation in closed form from tile counts and the loop order, and runs the
 * same schedule with each operation's jobs treated as equal: a few events per operation instead
 * of one per job.
 */
#ifndef TC_SIM_H
#define TC_SIM_H

#include <stdio.h>

#include "hw.h"
#include "workload.h"

enum sim_fidelity { SIM_FAST, SIM_CYCLE };

/* Energy is accounted by these parts (dynamic and leakage each). */
enum sim_part {
	E_MAC,
	E_SPARSITY,
	E_SR,
	E_FIFO,
	E_SOFTMAX,
	E_LAYERNORM,
	E_CONTROL,
	E_BUF_ACT,
	E_BUF_WEIGHT,
	E_BUF_MASK,
	E_MEMORY,
	E_COUNT
};
extern const char *const sim_part_names[E_COUNT];

/* Stall categories (AccelTran's seven). */
enum sim_stall {
	ST_BUFFER_BUSY,
	ST_MASK_BUFFER_BUSY,
	ST_BUFFER_FULL,
	ST_MASK_BUFFER_FULL,
	ST_PRODUCER,
	ST_COMPUTE_BUSY,
	ST_DATA_NOT_IN_BUFFER,
	ST_COUNT
};
extern const char *const sim_stall_names[ST_COUNT];

struct sim_options {
	int fidelity;
	double sparsity[3];            /* activation, weight, gradient */
	char dataflow[ACCEL_NAME_MAX]; /* loop order, outermost first: a permutation of "bijk" */
	/* Called, if set, for every operation (kind: matmul, conv, elementwise, softmax, layernorm,
	 * update) and transfer (load, spill, stream) with its interval in cycles, the units it used,
	 * its tiles, the unit-cycles it computed and its energy without leakage of buffers. */
	void (*trace)(void *ctx, const char *kind, const char *name, double start, double end, long units,
	              long tiles, double busy, double energy_nj);
	void *trace_ctx;
};

struct sim_result {
	int feasible;
	char reason[256];
	long units[UNIT_COUNT]; /* MAC lanes, softmax and layer-norm modules */
	double cycles, latency_s, energy_j;
	double dyn_nj[E_COUNT], leak_nj[E_COUNT];
	double busy[UNIT_COUNT];  /* unit-cycles computing per class */
	double fifo_cycles;       /* lane FIFO cycles */
	double ctl_tiles;         /* tiles dispatched (PE dataflow and DMA cycles) */
	double blocks[BUF_COUNT]; /* 64-element block accesses per buffer */
	double mem_blocks;        /* 64-word blocks moved to or from main memory */

	double util[UNIT_COUNT]; /* busy / (units x cycles) */
	double mem_busy;         /* cycles the main-memory channel moved data */
	double stalls[ST_COUNT]; /* stream-cycles spent waiting, by reason */
	double mem_read_bits, mem_write_bits, buf_read_bits, buf_write_bits;
	double peak_bits[BUF_COUNT]; /* peak occupancy of each buffer */
	long ops, tiles, jobs, transfers;
	double macs; /* multiply-accumulates performed after skipping zeros */
};

/* Simulate w on c. Returns 0, or -1 with err set (an internal limit). An accelerator that cannot
 * run the workload at all is a result: r->feasible = 0 with r->reason. */
int sim_run(struct sim_result *r, const struct workload *w, const struct hw_config *c,
            const struct sim_options *o, struct tc_error *err);

/*
 * A plan: the per-operation costs of w under the compute configuration of c (units, tiles,
 * multipliers) and the options, reusable with any accelerator that shares that configuration
 * (sim_plan_fits), whatever its buffers, memory or powers. Sweeps use it to cost each operation
 * once per group of accelerators. The plan borrows w, which must outlive it.
 */
struct sim_plan;
struct sim_plan *sim_plan_new(const struct workload *w, const struct hw_config *c,
                              const struct sim_options *o, struct tc_error *err);
int sim_plan_fits(const struct sim_plan *p, const struct hw_config *c);
void sim_plan_free(struct sim_plan *p);

/*
 * A memory plan: every load, spill and stream of w and what each waits for, decided in a
 * canonical order with c's buffer capacities and the options' sparsity, independent of timing
 * and of the compute configuration; reusable with any accelerator of the same buffer sizes
 * (sim_mplan_fits). Also decides feasibility (the embedding table must fit on chip).
 */
struct sim_mplan;
struct sim_mplan *sim_mplan_new(const struct workload *w, const struct hw_config *c,
                                const struct sim_options *o, struct tc_error *err);
int sim_mplan_fits(const struct sim_mplan *m, const struct hw_config *c);
void sim_mplan_free(struct sim_mplan *m);

/* Time a plan and a memory plan on c (which must fit both) at the plan's fidelity. */
int sim_time(struct sim_result *r, const struct sim_plan *p, const struct sim_mplan *m,
             const struct hw_config *c, struct tc_error *err);

/* Fill r's energies, latency and utilisation from its activity counts and cycles under c's
 * powers, buffer sizes and memory: a run's energy for another accelerator that differs only in
 * those, when the schedule would be the same. */
void sim_energy(struct sim_result *r, const struct hw_config *c);

/* 1 if s is a permutation of "bijk". */
int sim_valid_dataflow(const char *s);

#endif
