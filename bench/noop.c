/* The baseline for wrapper overhead: a C function with findity_get_token's signature that does
 * nothing, called through the same FFI machinery (ctypes, P/Invoke) in the same run. */
#include <stddef.h>
#include <stdint.h>

uint32_t noop_get_token(const char *base_url, const char *client_id, const char *client_secret, char *buf,
                        size_t buf_len, size_t *out_len) {
    (void)base_url, (void)client_id, (void)client_secret, (void)buf, (void)buf_len;
    if (out_len) *out_len = 0;
    return 0;
}
