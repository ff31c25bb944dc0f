/*
 * A standard descriptor the caller closed (`resnet18 - <&-`, `2>&-`) would otherwise be handed to the next file
 * anything opens: the runtime's start opens a dozen (/proc/self/maps, /dev/urandom, ...) and keeps some, and then
 * come the weights, the packed copy's temporary file (observed on fd 2 in session 34) and the images. So `-` read
 * whichever file the runtime kept on fd 0 and called it "not a PNG or JPEG image", and an error line written while
 * the packed copy was being written would have gone into it.
 *
 * As glibc does for set-user-ID programs, each closed one is opened on /dev/null in the direction it is not used
 * in: standard input write-only, standard output and error read-only. Nothing else can take those numbers, and
 * using them fails at once with EBADF, which the command reports as it did before by luck ("cannot write to
 * standard output: Bad file descriptor") or now by design ("-: cannot read: Bad file descriptor").
 *
 * Before the runtime opens anything (its C++ static constructors run later); the build IsaGate.c execs links this
 * too and does the same (IsaGate.c's own descriptors are close-on-exec). Only the command: a program embedding the
 * library owns its descriptors. Where /dev/null cannot be opened nothing changes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

__attribute__((constructor(102))) static void resnet18_standard_fds(void)
{
    static const int unusedDirection[3] = { O_WRONLY, O_RDONLY, O_RDONLY };
    for (int fd = 0; fd < 3; fd++)
    {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
        /* open returns the lowest free number: this one, as the lower ones are open by now. */
        int opened = open("/dev/null", unusedDirection[fd] | O_NOFOLLOW);
        if (opened >= 0 && opened != fd) close(opened);
    }
}
