/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Hostile trees for tests/security/hostile-images.sh, made by guest root inside a guest (static: busybox
 * images have no libc). A shell loop of mkdir+cd takes minutes for 35,000 levels; this takes a second.
 *
 *   mktree deep N DIR    DIR/d/d/…/d, N levels below DIR (relative steps: the path is far past PATH_MAX)
 *   mktree files N DIR   N empty files in the one directory DIR
 *   mktree links N DIR   N files in DIR with a second name each (N distinct hardlinked inodes)
 *
 * Prints "made N" on success. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int enter_new_dir(int dirfd, const char *name)
{
        if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
                return -1;
        return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

static long deep(long n, int top)
{
        int fd = top;
        long i;
        for (i = 0; i < n; i++) {
                int sub = enter_new_dir(fd, "d");
                if (sub < 0)
                        break;
                if (fd != top)
                        close(fd);
                fd = sub;
        }
        return i;
}

static long files(long n, int dirfd, int links)
{
        char name[32], other[32];
        long i;
        for (i = 0; i < n; i++) {
                snprintf(name, sizeof name, "f%ld", i);
                int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (fd < 0)
                        break;
                close(fd);
                snprintf(other, sizeof other, "l%ld", i);
                if (links && linkat(dirfd, name, dirfd, other, 0) < 0)
                        break;
        }
        return i;
}

int main(int argc, char **argv)
{
        if (argc != 4) {
                fprintf(stderr, "usage: %s deep|files|links N DIR\n", argv[0]);
                return 2;
        }
        long n = strtol(argv[2], NULL, 10), made;
        int top = open(argv[3], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (top < 0 && mkdir(argv[3], 0755) == 0)
                top = open(argv[3], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (top < 0) {
                perror(argv[3]);
                return 1;
        }
        if (strcmp(argv[1], "deep") == 0)
                made = deep(n, top);
        else if (strcmp(argv[1], "files") == 0 || strcmp(argv[1], "links") == 0)
                made = files(n, top, strcmp(argv[1], "links") == 0);
        else {
                fprintf(stderr, "unknown mode %s\n", argv[1]);
                return 2;
        }
        printf("made %ld\n", made);
        if (made < n) {
                fprintf(stderr, "stopped after %ld: %s\n", made, strerror(errno));
                return 1;
        }
        return 0;
}
