/*
 * chain-map.h - merged read map of a read-only backing chain (see
 * chain-map.c): reads at any depth cost one lookup and one pread.
 */
#ifndef VMC_CHAIN_MAP_H
#define VMC_CHAIN_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmc_image;
struct chain_map;

/* Map the guest view of @base; -ENOTSUP if a layer is writable. */
int chain_map_new(struct chain_map **out, struct vmc_image *base);
void chain_map_free(struct chain_map *m);
/* Read through the map (same result as vmc_image_read(base, ...)). */
int chain_map_read(struct chain_map *m, void *buf, uint64_t off, size_t len);
/* False once chain_map_invalidate_all() ran after the map was built. */
bool chain_map_is_current(const struct chain_map *m);
/* A layer of some chain changed (reopened read-write): stop trusting
 * every map built so far. */
void chain_map_invalidate_all(void);

#endif /* VMC_CHAIN_MAP_H */
