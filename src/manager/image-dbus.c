/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.machinemgr1.Manager's image methods and the org.machinemgr1.Image objects. Every call looks at the
 * image directories, so what the bus shows is what is on disk, except the usage, which needs a walk of the
 * whole tree: that comes from image-usage.c's cache (possibly stale or unknown, never walked here). */
#include "image-dbus.h"
#include "bus-names.h"
#include "image.h"
#include "image-usage.h"
#include "log.h"
#include "manager.h"
#include "names.h"
#include "operation.h"
#include "util.h"


int image_bus_path(const char *name, char **ret)
{
        return sd_bus_path_encode(IMAGE_PATH_PREFIX, name, ret);
}

/* ---- checks shared by the Manager and the Image methods ---- */

static int check_name(const char *name, sd_bus_error *error)
{
        if (!machine_name_is_valid(name))
                return sd_bus_error_setf(error, MM_ERROR_INVALID_NAME, "Invalid image name '%s'.", name);
        return 0;
}

static int load_image(Manager *m, const char *name, Image **ret, sd_bus_error *error)
{
        int r = check_name(name, error);
        if (r < 0)
                return r;
        r = image_load(m->image_path, name, ret);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, MM_ERROR_NO_SUCH_IMAGE, "No image '%s'.", name);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "%s: read image: %m", name);
        return 0;
}

static int check_exists(Manager *m, const char *name, sd_bus_error *error)
{
        _cleanup_image_ Image *i = NULL;
        return load_image(m, name, &i, error);
}

static int check_absent(Manager *m, const char *name, sd_bus_error *error)
{
        _cleanup_image_ Image *i = NULL;
        int r = check_name(name, error);
        if (r < 0)
                return r;
        r = image_load(m->image_path, name, &i);
        if (r >= 0)
                return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "Image '%s' already exists.", name);
        return r == -ENOENT ? 0 : sd_bus_error_set_errnof(error, r, "%s: read image: %m", name);
}

/* Not running, and nobody (a starting machine, another operation) holds its lock: then we hold it. */
static int lock_image(Manager *m, const char *name, int *ret_fd, sd_bus_error *error)
{
        if (manager_get_machine(m, name))
                return sd_bus_error_setf(error, MM_ERROR_IMAGE_BUSY,
                                         "Image '%s' is in use by a running machine.", name);
        int r = image_lock(m->image_path, name, ret_fd);
        if (r == -EBUSY)
                return sd_bus_error_setf(error, MM_ERROR_IMAGE_BUSY,
                                         "Image '%s' is locked by another operation.", name);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "%s: lock image: %m", name);
        return 0;
}

/* For the synchronous operations; the checks before them make EEXIST and ENOENT races, named all the same.
 */
static int image_error_to_bus(int r, const char *name, const char *new_name, const ImageError *e,
                              sd_bus_error *error)
{
        if (r == -EEXIST)
                return sd_bus_error_setf(error, MM_ERROR_INVALID_ARGUMENT, "Image '%s' already exists.",
                                         new_name);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, MM_ERROR_NO_SUCH_IMAGE, "No image '%s'.", name);
        return sd_bus_error_set_errnof(error, r, "%s", e->text[0] ? e->text : strerror(-r));
}

/* ---- the operations ---- */

typedef struct ImageJob {
        const char *image_path;
        const char *name;
        const char *new_name;
        bool read_only;
} ImageJob;

static int clone_work(void *userdata, ImageError *e)
{
        ImageJob *j = userdata;
        return image_clone(j->image_path, j->name, j->new_name, j->read_only, e);
}

static int remove_work(void *userdata, ImageError *e)
{
        ImageJob *j = userdata;
        return image_remove(j->image_path, j->name, e);
}

static int do_clone(Manager *m, sd_bus_message *message, const char *src, const char *dst, bool ro,
                    sd_bus_error *error)
{
        int locks[2] = {-1, -1};
        int r = bus_check_root(message, error);
        if (r >= 0)
                r = check_exists(m, src, error);
        if (r >= 0)
                r = check_absent(m, dst, error);
        if (r >= 0)
                r = lock_image(m, src, &locks[0], error);
        if (r >= 0 && (r = lock_image(m, dst, &locks[1], error)) < 0)
                locks[0] = image_unlock(m->image_path, src, locks[0]);
        if (r < 0)
                return r;
        ImageJob job = {m->image_path, src, dst, ro}; /* read by the worker, in its copy of our memory */
        const char *names[] = {src, dst};
        r = operation_start(m, message, clone_work, &job, locks, names, 2);
        return r < 0 ? sd_bus_error_set_errnof(error, r, "%s: start the clone: %m", src) : r;
}

static int do_remove(Manager *m, sd_bus_message *message, const char *name, sd_bus_error *error)
{
        int lock = -1;
        int r = bus_check_root(message, error);
        if (r >= 0)
                r = check_exists(m, name, error);
        if (r >= 0)
                r = lock_image(m, name, &lock, error);
        if (r < 0)
                return r;
        ImageJob job = {.image_path = m->image_path, .name = name};
        r = operation_start(m, message, remove_work, &job, &lock, &name, 1);
        return r < 0 ? sd_bus_error_set_errnof(error, r, "%s: start the removal: %m", name) : r;
}

static int do_rename(Manager *m, sd_bus_message *message, const char *old_name, const char *new_name,
                     sd_bus_error *error)
{
        int r = bus_check_root(message, error);
        _cleanup_close_ int lock_old = -1, lock_new = -1;
        if (r >= 0)
                r = check_exists(m, old_name, error);
        if (r >= 0)
                r = check_absent(m, new_name, error);
        if (r >= 0)
                r = lock_image(m, old_name, &lock_old, error);
        if (r >= 0)
                r = lock_image(m, new_name, &lock_new, error);
        if (r >= 0) {
                ImageError e = {};
                r = image_rename(m->image_path, old_name, new_name, &e);
                if (r < 0)
                        r = image_error_to_bus(r, old_name, new_name, &e, error);
        }
        lock_old = image_unlock(m->image_path, old_name, lock_old);
        lock_new = image_unlock(m->image_path, new_name, lock_new);
        return r < 0 ? r : sd_bus_reply_method_return(message, NULL);
}

static int do_mark_read_only(Manager *m, sd_bus_message *message, const char *name, bool ro,
                             sd_bus_error *error)
{
        _cleanup_close_ int lock = -1;
        int r = bus_check_root(message, error);
        if (r >= 0)
                r = check_exists(m, name, error);
        if (r >= 0)
                r = lock_image(m, name, &lock, error);
        if (r < 0)
                return r;
        r = image_set_read_only(m->image_path, name, ro);
        lock = image_unlock(m->image_path, name, lock);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "%s: mark %s: %m", name,
                                               ro ? "read-only" : "writable");
        return sd_bus_reply_method_return(message, NULL);
}

/* ---- org.machinemgr1.Manager methods ---- */

int method_list_images(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Image **l = NULL;
        size_t n = 0;
        int r = image_list(m->image_path, &l, &n);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "List images in %s: %m", m->image_path);
        r = sd_bus_message_new_method_return(message, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssbttto)");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *path = NULL;
                r = image_bus_path(l[i]->name, &path);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "(ssbttto)", l[i]->name, "directory",
                                                  (int)l[i]->read_only, l[i]->crtime, l[i]->mtime,
                                                  image_usage_get(m, l[i]), path);
        }
        image_list_free(l, n);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r < 0 ? r : sd_bus_send(NULL, reply, NULL);
}

int method_get_image(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        const char *name;
        _cleanup_free_ char *path = NULL;
        int r = sd_bus_message_read(message, "s", &name);
        if (r >= 0)
                r = check_exists(userdata, name, error);
        if (r >= 0)
                r = image_bus_path(name, &path);
        return r < 0 ? r : sd_bus_reply_method_return(message, "o", path);
}

int method_clone_image(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        const char *src, *dst;
        int ro;
        int r = sd_bus_message_read(message, "ssb", &src, &dst, &ro);
        return r < 0 ? r : do_clone(userdata, message, src, dst, ro, error);
}

int method_rename_image(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        const char *old_name, *new_name;
        int r = sd_bus_message_read(message, "ss", &old_name, &new_name);
        return r < 0 ? r : do_rename(userdata, message, old_name, new_name, error);
}

int method_remove_image(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        const char *name;
        int r = sd_bus_message_read(message, "s", &name);
        return r < 0 ? r : do_remove(userdata, message, name, error);
}

int method_mark_image_read_only(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        const char *name;
        int ro;
        int r = sd_bus_message_read(message, "sb", &name, &ro);
        return r < 0 ? r : do_mark_read_only(userdata, message, name, ro, error);
}

/* ---- org.machinemgr1.Image objects: userdata is the Manager, the name comes from the path ---- */

static int name_from_path(const char *path, char **ret)
{
        int r = sd_bus_path_decode(path, IMAGE_PATH_PREFIX, ret);
        return r < 0 ? r : r == 0 ? -ENOENT : 0;
}

static int image_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                             void **found, sd_bus_error *error)
{
        Manager *m = userdata;
        _cleanup_free_ char *name = NULL;
        _cleanup_image_ Image *i = NULL;
        if (name_from_path(path, &name) < 0 || !machine_name_is_valid(name))
                return 0;
        if (image_load(m->image_path, name, &i) < 0)
                return 0;
        *found = m;
        return 1;
}

static int image_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes,
                                 sd_bus_error *error)
{
        Manager *m = userdata;
        _cleanup_strv_free_ char **l = NULL;
        Image **images = NULL;
        size_t n = 0;
        int r = image_list(m->image_path, &images, &n);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                char *p;
                if ((r = image_bus_path(images[i]->name, &p)) >= 0 && (r = strv_push(&l, p)) < 0)
                        free(p);
        }
        image_list_free(images, n);
        if (r < 0)
                return r;
        *nodes = TAKE_PTR(l);
        return 1;
}

static int object_image(sd_bus_message *message_or_null, const char *path, Manager *m, Image **ret,
                        sd_bus_error *error)
{
        _cleanup_free_ char *name = NULL;
        if (!path)
                path = sd_bus_message_get_path(message_or_null);
        int r = name_from_path(path, &name);
        if (r < 0)
                return sd_bus_error_setf(error, MM_ERROR_NO_SUCH_IMAGE, "No image at %s.", path);
        return load_image(m, name, ret, error);
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        _cleanup_image_ Image *i = NULL;
        int r = object_image(NULL, path, userdata, &i, error);
        if (r < 0)
                return r;
        if (streq(property, "Name") || streq(property, "Path") || streq(property, "Type"))
                return sd_bus_message_append(reply, "s",
                                             streq(property, "Name")   ? i->name
                                             : streq(property, "Path") ? i->path
                                                                       : "directory");
        if (streq(property, "ReadOnly"))
                return sd_bus_message_append(reply, "b", (int)i->read_only);
        return sd_bus_message_append(reply, "t",
                                     streq(property, "CreationTimestamp")       ? i->crtime
                                     : streq(property, "ModificationTimestamp") ? i->mtime
                                                                                : image_usage_get(userdata, i));
}

static int method_remove(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        _cleanup_image_ Image *i = NULL;
        int r = object_image(message, NULL, userdata, &i, error);
        return r < 0 ? r : do_remove(userdata, message, i->name, error);
}

static int method_rename(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        _cleanup_image_ Image *i = NULL;
        const char *new_name;
        int r = sd_bus_message_read(message, "s", &new_name);
        if (r >= 0)
                r = object_image(message, NULL, userdata, &i, error);
        return r < 0 ? r : do_rename(userdata, message, i->name, new_name, error);
}

static int method_clone(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        _cleanup_image_ Image *i = NULL;
        const char *dst;
        int ro;
        int r = sd_bus_message_read(message, "sb", &dst, &ro);
        if (r >= 0)
                r = object_image(message, NULL, userdata, &i, error);
        return r < 0 ? r : do_clone(userdata, message, i->name, dst, ro, error);
}

static int method_mark_read_only(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
        _cleanup_image_ Image *i = NULL;
        int ro;
        int r = sd_bus_message_read(message, "b", &ro);
        if (r >= 0)
                r = object_image(message, NULL, userdata, &i, error);
        return r < 0 ? r : do_mark_read_only(userdata, message, i->name, ro, error);
}

static const sd_bus_vtable image_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Name", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Path", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Type", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("ReadOnly", "b", property_get, 0, 0),
    SD_BUS_PROPERTY("CreationTimestamp", "t", property_get, 0, 0),
    SD_BUS_PROPERTY("ModificationTimestamp", "t", property_get, 0, 0),
    SD_BUS_PROPERTY("Usage", "t", property_get, 0, 0),
    SD_BUS_METHOD("Remove", "", "", method_remove, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("Rename", "s", "", method_rename, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("Clone", "sb", "", method_clone, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("MarkReadOnly", "b", "", method_mark_read_only, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

int image_bus_add_objects(Manager *m, sd_bus *bus)
{
        int r = sd_bus_add_fallback_vtable(bus, NULL, IMAGE_PATH_PREFIX, MM_BUS_IMAGE_INTERFACE,
                                           image_vtable, image_object_find, m);
        if (r < 0)
                return r;
        return sd_bus_add_node_enumerator(bus, NULL, IMAGE_PATH_PREFIX, image_node_enumerator, m);
}
