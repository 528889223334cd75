/*
 * conf: what every part of the configuration shares: the bounds of a path and of the file.
 */
#ifndef MDM_CONF_H
#define MDM_CONF_H

#define CONFIG_PATH_MAX 1024
/* adapters in one configuration (the reconciler and the lookup size their tables by it) */
#define CONFIG_MAX_ADAPTERS 32
/* config files (and buffers) larger than this are refused */
#define CONFIG_FILE_MAX (1024 * 1024)

#endif
