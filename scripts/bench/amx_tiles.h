// amx_tiles.h: what the AMX probes (amx_probe.cc, amx_gemm.cc) share: the tile configuration and the request for
// the tile state, which Linux grants per process.
#pragma once
#include <sys/syscall.h>
#include <unistd.h>
#include <cstdint>

#pragma GCC target("amx-tile,amx-bf16")

// Palette 1, tiles 0-7 of 16 rows x 64 bytes (a constant: GCC 12's _tile_loadconfig declares an 8-byte read).
struct alignas(64) TileConfig {
  uint8_t palette, start, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
constexpr TileConfig kTiles = {1, 0, {}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};

// True when this process may use the tile registers (a CPU without AMX, or an old kernel: false).
inline bool grantTiles() { return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0; }
