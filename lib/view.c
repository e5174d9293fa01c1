/* linattn - tensors as the drivers address them: element strides (C order
 * when the caller gave none) and rows of the [B,T,H,X] layouts. */
#include "internal.h"

void linattn_strides(const linattn_tensor *t, int64_t *s)
{
    int any = 0;
    for (int d = 0; d < t->ndim; d++) any |= t->strides[d] != 0;
    if (any) {
        for (int d = 0; d < t->ndim; d++) s[d] = t->strides[d];
        return;
    }
    int64_t acc = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        s[d] = acc;
        acc *= t->shape[d];
    }
}

linattn_rows linattn_rows_of(const linattn_tensor *t, int has_t, int has_x)
{
    linattn_rows r = {0};
    if (!linattn_given(t)) return r;
    int64_t s[LINATTN_MAX_DIMS];
    linattn_strides(t, s);
    int d = 0;
    r.p = linattn_host(t);
    r.sb = (ptrdiff_t)s[d++];
    r.st = has_t ? (ptrdiff_t)s[d++] : 0;
    r.sh = (ptrdiff_t)s[d++];
    r.sx = has_x ? (ptrdiff_t)s[d] : 1;
    return r;
}
