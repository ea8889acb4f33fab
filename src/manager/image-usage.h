/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Image usage for the read-only calls (ListImages, the Image Usage property, GetManagedObjects), which
 * every local user may make: answered from a cache at once, never by walking a tree in the event loop.
 *
 * A value older than IMAGE_USAGE_FRESH_USEC (or none) starts a walk (image.h's image_usage_at) in a
 * worker process, "mm-image-usage": niced, its own copy of nothing but the image's fd, killed when the
 * daemon dies or when it overruns its time. At most one walk per image and IMAGE_USAGE_WALKS_MAX walks at
 * once; an image that asks while every slot is busy waits in a queue that holds each image once. So any
 * number of calls cost at most one walk per image per IMAGE_USAGE_FRESH_USEC.
 *
 * The value is UINT64_MAX (unknown) until the first walk of the directory has ended, and after a walk
 * that failed or stopped at a limit (deeper than IMAGE_DEPTH_MAX levels, more entries or hardlinked
 * files than image.h allows, longer than IMAGE_USAGE_WALK_USEC): a tree beyond the limits is not
 * measured, rather than reported smaller than it is. Until the next walk ends, the last value stands. */

#include <stdint.h>

#include "image.h"
#include "manager.h"

#define IMAGE_USAGE_FRESH_USEC (30ULL * 1000 * 1000)
#define IMAGE_USAGE_WALK_USEC (30ULL * 1000 * 1000)
#define IMAGE_USAGE_WALKS_MAX 2U
/* Images remembered; one not asked for during IMAGE_USAGE_FORGET_USEC is forgotten. */
#define IMAGE_USAGE_CACHE_MAX 4096U
#define IMAGE_USAGE_FORGET_USEC (600ULL * 1000 * 1000)

/* The cached usage of image i (loaded by image_load just now), UINT64_MAX when unknown; starts or queues
 * a walk when the value is not fresh. Never blocks. */
uint64_t image_usage_get(Manager *m, const Image *i);

/* Walks started since the daemon started, for tests. */
unsigned image_usage_walks_started(void);
