/* unit: what every cmocka unit test includes, in the order cmocka needs. */
#ifndef MDM_UNIT_H
#define MDM_UNIT_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#endif
