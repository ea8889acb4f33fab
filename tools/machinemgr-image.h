/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Image verbs of the machinemgr CLI. list-images, image-status, clone, rename, remove and read-only are
 * D-Bus calls; create, import-tar and export-tar are local helpers working in the image path directly
 * ($MACHINEMGR_IMAGE_PATH, default /var/lib/machines) and take bus == NULL. */

#include <stdbool.h>
#include <systemd/sd-bus.h>

typedef struct ImageArgs {
        const char *distribution; /* create --distribution= (only "debian") */
        const char *release;      /* create --release= */
        bool busybox;             /* create --busybox */
} ImageArgs;

extern ImageArgs image_arg;

int verb_list_images(sd_bus *bus, char **args);
int verb_image_status(sd_bus *bus, char **args);
int verb_clone(sd_bus *bus, char **args); /* --read-only: arg.read_only > 0 */
int verb_rename(sd_bus *bus, char **args);
int verb_remove(sd_bus *bus, char **args);
int verb_read_only(sd_bus *bus, char **args);
int verb_create(sd_bus *bus, char **args);
int verb_import_tar(sd_bus *bus, char **args);
int verb_export_tar(sd_bus *bus, char **args);
