/*
 * inventory: devices from a JSON file, answered from memory. For lab and exception devices,
 * and the demo. File format (every field but "id" optional):
 *   {"devices": [{"id": "inv-001", "macs": ["00:26:B4:24:FE:B4"], "guid": "...", "udid": "...",
 *     "imei": "...", "meid": "...", "serial": "...", "hostname": "...", "username": "...",
 *     "ownership": "corporate" | "personal" | "unknown", "registered": true, "compliant": false,
 *     "failure_reason": "...", "remediation": "...", "disk_encrypted": true, "pin_lock": true,
 *     "jail_broken": false, "manufacturer": "...", "model": "...", "os_version": "...",
 *     "phone_number": "...", "last_checkin": 1700000000000}]}
 * MACs in any form mac_parse accepts; identifiers validated as ident_parse does. Unknown keys,
 * wrong types and bad values are refused with "file: devices[i].key: what is wrong".
 */
#ifndef MDM_INVENTORY_H
#define MDM_INVENTORY_H

#include <stddef.h>

#include "../core/conf.h"
#include "adapter.h"
#include "registry.h"

#define INVENTORY_MAX_DEVICES 1000000
#define INVENTORY_MAX_FILE (512u * 1024u * 1024u)
#define INVENTORY_PAGE 1000

/* The keys of an adapter of type "inventory" once loaded (inventory_conf.c). */
struct config_inventory {
	char file[CONFIG_PATH_MAX]; /* the JSON device file (relative: the config's directory) */
};

/* The descriptor of type "inventory" (registry.h): no network. */
extern const struct adapter_type inventory_adapter_type;

/* inventory_create: loads path; NULL with a one-line reason in why on any error. */
struct adapter *inventory_create(const char *name, const char *path, char *why, size_t whysz);

/*
 * Actions are accepted for any device of the file and change what it reports from then on (in
 * memory only), as an MDM would: pin_lock turns pin_lock on; corporate_wipe and full_wipe
 * unenrol the device (registered false, no compliance). An unknown vendor id is rejected.
 * inventory_action_count: how many actions device vendor_id took, and the last one.
 */
enum mdm_err inventory_action_count(struct adapter *a, const char *vendor_id, unsigned *count,
				    enum action_kind *last);

/* inventory_count: how many devices an inventory adapter holds. */
size_t inventory_count(const struct adapter *a);

#endif
