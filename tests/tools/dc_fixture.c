/* dc_fixture NAME DIR: writes the random-weight checkpoint NAME (bert, e1, e6, e8, e11, e12, e7, roberta, e5, longformer,
 * clip)
 * into DIR. Used by tests/data/encoder/gen_goldens.py; the C tests call the same generator
 * (bert_fixture.c) directly. Build: cc -O2 tests/tools/dc_fixture.c tests/tools/bert_fixture.c
 * -lm -o dc_fixture */
#include <stdio.h>

#include "bert_fixture.h"

int main(int argc, char **argv) {
    dc_fixture_spec s;
    if (argc != 3 || !dc_fixture_named(argv[1], &s)) {
        fprintf(stderr, "usage: dc_fixture bert|e1|e6|e8|e11|e12|e7|roberta|e5|longformer|clip DIR\n");
        return 2;
    }
    return dc_fixture_write(argv[2], &s) == 0 ? 0 : 1;
}
