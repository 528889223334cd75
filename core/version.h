/* version: the build's version string (the Makefile may set MDMGW_VERSION). */
#ifndef MDM_VERSION_H
#define MDM_VERSION_H

#ifndef MDMGW_VERSION
#define MDMGW_VERSION "0.1.0"
#endif

#endif
