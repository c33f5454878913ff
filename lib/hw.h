/*
 * hw.h: hardware profiles (share/hw/<name>.json, format "transcode-hw/1") and what they make of one
 * accelerator: its area, and the per-unit powers, energies and bandwidths the simulator charges.
 *
 * Ownership: struct hw_profile and struct hw_config are plain values; nothing here allocates
 * beyond the call.
 *
 * Units inside: cycles of the profile's clock, bits, nanojoules (mW / MHz = nJ per cycle).
 * The area of a processing element is lanes_per_pe x (MAC lane + FIFO + pre- and post-compute
 * sparsity [+ stochastic rounding in training]) + softmax_per_pe softmax modules + one layer-norm
 * module + the dataflow module + the DMA, as in AccelTran; AccelTran-Edge comes to 54.06 mm2 and
 * AccelTran-Server to 1829.70 mm2.
 */
#ifndef TC_HW_H
#define TC_HW_H

#include "space.h"
#include "util.h"

#define HW_MAX_LANE_KINDS 16
#define HW_MAX_TILE_KINDS 16
#define HW_MAX_MEMORIES   32

struct hw_module {
	double area_um2, dynamic_mw, leakage_mw;
};

struct hw_buffer {
	double area_um2_per_mb, leakage_mw_per_mb, access_nj_per_block_per_sqrt_mb, bandwidth_gbps;
};

enum { BUF_ACT, BUF_WEIGHT, BUF_MASK, BUF_COUNT };
extern const char *const hw_buffer_names[BUF_COUNT]; /* "activation", "weight", "mask" */

struct hw_profile {
	char name[64];
	double clock_mhz;
	int word_bits, mask_bits, fifo_words, block_elements;
	double softmax_rate, layernorm_rate; /* elements per cycle of one module */
	double sparsity[3];                  /* default activation, weight, gradient sparsity */
	int opt_state, opt_ops;              /* optimizer: state words and operations per parameter */
	/* MAC lanes by (activation, multipliers) and softmax / layer-norm modules by tile size */
	int nlane;
	char lane_act[HW_MAX_LANE_KINDS][8];
	int lane_macs[HW_MAX_LANE_KINDS];
	struct hw_module lane[HW_MAX_LANE_KINDS];
	int nsm, sm_tile[HW_MAX_TILE_KINDS];
	struct hw_module sm[HW_MAX_TILE_KINDS];
	int nln, ln_tile[HW_MAX_TILE_KINDS];
	struct hw_module ln[HW_MAX_TILE_KINDS];
	struct hw_module pre, post, fifo, sr, dataflow, dma;
	struct hw_buffer buf[BUF_COUNT];
	int nmem;
	char mem_name[HW_MAX_MEMORIES][ACCEL_NAME_MAX];
	double mem_nj_per_block[HW_MAX_MEMORIES], mem_gbps[HW_MAX_MEMORIES];
};

/* Area of one accelerator, mm2, by part. */
struct hw_area {
	double mac_lanes, fifo, sparsity, stochastic_rounding, softmax, layernorm, dataflow, dma;
	double buffer[BUF_COUNT];
	double pes, buffers, total;
};

/* What the simulator needs of one accelerator under one profile. */
struct hw_config {
	const struct hw_profile *prof;
	int training;                        /* stochastic rounding units present and powered */
	long lanes, softmax, layernorm, pes; /* units of each class */
	int macs, tile_b, tile_x, tile_y;
	int fifo_bits;              /* bits one lane moves to or from the buffers per cycle */
	double buf_bits[BUF_COUNT]; /* capacities */
	double buf_nj_per_block[BUF_COUNT];
	double buf_leak_nj_per_cycle[BUF_COUNT];
	double mem_bits_per_cycle; /* main memory, limited by the buffers' side too */
	double mem_nj_per_block;
	/* per busy cycle of one unit, nJ: MAC lane with its sparsity modules [and SR], FIFO,
	 * softmax module, layer-norm module, PE control (dataflow + DMA) */
	double lane_dyn, lane_leak, sparsity_dyn, sparsity_leak, sr_dyn, sr_leak, fifo_dyn, fifo_leak;
	double sm_dyn, sm_leak, ln_dyn, ln_leak, ctl_dyn, ctl_leak;
	struct hw_area area;
};

/* Load and check a profile; errors name the file and the entry. */
int hw_profile_load(struct hw_profile *p, const char *path, struct tc_error *err);

/*
 * Derive the configuration of accelerator a for inference (training 0) or training (1).
 * Returns 0, or -1 naming what the profile lacks ("no MAC lane with 8 multipliers and gelu").
 */
int hw_config_init(struct hw_config *c, const struct hw_profile *p, const struct accel *a, int training,
                   struct tc_error *err);

#endif
