/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The bus face of images (SPEC §6): Manager methods (userdata is the Manager) and the
 * org.machinemgr1.Image objects at /org/machinemgr1/image/<sd_bus_path_encode(NAME)>. */

#include <systemd/sd-bus.h>

#include "bus-names.h"
#include "manager.h"

#define IMAGE_PATH_PREFIX MM_BUS_IMAGE_PREFIX

int image_bus_path(const char *name, char **ret);
int image_bus_add_objects(Manager *m, sd_bus *bus);

int method_list_images(sd_bus_message *message, void *userdata, sd_bus_error *error);
int method_get_image(sd_bus_message *message, void *userdata, sd_bus_error *error);
int method_clone_image(sd_bus_message *message, void *userdata, sd_bus_error *error);
int method_rename_image(sd_bus_message *message, void *userdata, sd_bus_error *error);
int method_remove_image(sd_bus_message *message, void *userdata, sd_bus_error *error);
int method_mark_image_read_only(sd_bus_message *message, void *userdata, sd_bus_error *error);
