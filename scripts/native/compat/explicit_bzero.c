/* explicit_bzero for findity-token built against glibc 2.17 (make native): glibc has it only
 * since 2.25, and tools/findity-token.c wipes the secret it read with it. Linked into the
 * program itself, so the binary references no GLIBC_2.25 symbol. The barrier keeps the
 * compiler from removing the memset as a dead store. */
#include <string.h>

void explicit_bzero(void *s, size_t n)
{
    memset(s, 0, n);
    __asm__ __volatile__("" : : "r"(s) : "memory");
}
