#ifndef MDMD_CONSOLE_FILES_H
#define MDMD_CONSOLE_FILES_H

#include <stddef.h>

/* The console's static files, generated into the build
 * directory from web/ by web/embed.sh.  Static data; nothing to free. */

struct console_file {
    const char *name;  /* "app.js"; NULL ends the table */
    const char *ctype; /* Content-Type, from the extension */
    const char *etag;  /* "\"<16 hex of the SHA-256>\"" */
    const unsigned char *data;
    size_t len;
};

extern const struct console_file console_files[];

#endif
