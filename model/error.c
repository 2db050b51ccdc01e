/* error.c — the model's error message (model.h): one thread-local line,
 * set by gm_set_error, read with gm_last_error.  Every part of the model
 * reports through it: libgmodel (functions returning ga_status or NULL) and
 * the CLI-side modules (util.h: gu_fail / gu_error are this buffer).  A
 * failure inside the kernel library is copied in with its message. */
#include <stdarg.h>
#include <stdio.h>

#include "model.h"

static _Thread_local char err_buf[1024];

const char *gm_last_error(void) { return err_buf; }

ga_status gm_set_error(ga_status st, const char *fmt, ...)
{
    char tmp[sizeof err_buf]; /* fmt's arguments may point into err_buf */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    snprintf(err_buf, sizeof err_buf, "%s", tmp);
    return st;
}
