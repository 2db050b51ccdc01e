/* error.c — thread-local last-error message for the checked API. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static _Thread_local char last_error[512];

const char *ga_last_error(void) { return last_error; }

void ga_clear_error(void) { last_error[0] = '\0'; }

ga_status ga_set_error(ga_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

const char *ga_status_name(ga_status s)
{
    switch (s) {
    case GA_OK: return "ok";
    case GA_EINVAL: return "invalid argument";
    case GA_ENOTSUP: return "not supported";
    case GA_ENOMEM: return "out of memory";
    case GA_ESYS: return "system error";
    }
    return "unknown status";
}
