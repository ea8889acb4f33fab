/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The D-Bus API's names (SPEC §6), for the daemon's bus faces and the CLI alike. */

#define MM_BUS_NAME "org.machinemgr1"
#define MM_BUS_PATH "/org/machinemgr1"
#define MM_BUS_MACHINE_PREFIX "/org/machinemgr1/machine"
#define MM_BUS_IMAGE_PREFIX "/org/machinemgr1/image"
#define MM_BUS_MANAGER_INTERFACE "org.machinemgr1.Manager"
#define MM_BUS_MACHINE_INTERFACE "org.machinemgr1.Machine"
#define MM_BUS_IMAGE_INTERFACE "org.machinemgr1.Image"

#define MM_ERROR_NO_SUCH_MACHINE "org.machinemgr1.Error.NoSuchMachine"
#define MM_ERROR_NO_SUCH_IMAGE "org.machinemgr1.Error.NoSuchImage"
#define MM_ERROR_MACHINE_EXISTS "org.machinemgr1.Error.MachineExists"
#define MM_ERROR_INVALID_NAME "org.machinemgr1.Error.InvalidName"
#define MM_ERROR_INVALID_ARGUMENT "org.machinemgr1.Error.InvalidArgument"
#define MM_ERROR_IMAGE_BUSY "org.machinemgr1.Error.ImageBusy"
#define MM_ERROR_NO_INIT "org.machinemgr1.Error.NoInit"
#define MM_ERROR_START_FAILED "org.machinemgr1.Error.StartFailed"
