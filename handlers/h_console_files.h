/* h_console_files.h: the console's static files, generated into the build
 * directory from web/ by web/embed.sh.  Static data; nothing to free. */
#ifndef MDMD_H_CONSOLE_FILES_H
#define MDMD_H_CONSOLE_FILES_H

#include <stddef.h>

struct h_console_file {
    const char *name;                /* "app.js"; NULL ends the table */
    const char *ctype;               /* Content-Type, from the extension */
    const char *etag;                /* "\"<16 hex of the SHA-256>\"" */
    const unsigned char *data;
    size_t len;
};

extern const struct h_console_file h_console_files[];

#endif
