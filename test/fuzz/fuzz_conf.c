/* Fuzz target: the configuration file parser (conf_load + conf_finish). */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../core/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char path[64], err[512];
    struct conf cf;
    int fd = memfd_create("mdmd-conf", 0);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    conf_init(&cf);
    if (conf_load(&cf, path, err, sizeof(err)) == 0)
        (void)conf_finish(&cf, err, sizeof(err));
    conf_clear(&cf);
    close(fd);
    return 0;
}
