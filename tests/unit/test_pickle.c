/* Restricted unpickler: values it builds, and everything it must refuse. */
#include "weights_fixture.h"

#include "io/pickle.h"
#include "io/zip.h"

#define PK(s) (const uint8_t *)(s), sizeof(s) - 1

static dc_status parse(const uint8_t *buf, size_t len, dc_pickle **p) {
    return dc_pickle_parse(buf, len, 0, "t.pkl", p, NULL);
}

static void test_values(void **state) {
    (void)state;
    /* {'a': 1, 'b': 1.5, 'c': [None, True, False], 'd': (-2, 300, 70000), 'e': 'é',
     *  'f': b'xy', 'g': -1 (LONG1), 'h': 2**70 (LONG1)} at protocol 2 / 3 */
    static const char p[] =
        "\x80\x03}q\x00(X\x01\x00\x00\x00" "aK\x01"
        "X\x01\x00\x00\x00" "bG?\xf8\x00\x00\x00\x00\x00\x00"
        "X\x01\x00\x00\x00" "c]q\x01(N\x88\x89" "e"
        "X\x01\x00\x00\x00" "dJ\xfe\xff\xff\xffM,\x01J\x70\x11\x01\x00\x87"
        "X\x01\x00\x00\x00" "eX\x02\x00\x00\x00\xc3\xa9"
        "X\x01\x00\x00\x00" "fC\x02xy"
        "X\x01\x00\x00\x00g\x8a\x01\xff"
        "X\x01\x00\x00\x00h\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x40"
        "u.";
    dc_pickle *pk = NULL;
    size_t used = 0;
    assert_ok(dc_pickle_parse(PK(p), 100, "t.pkl", &pk, &used));
    assert_int_equal(used, sizeof p - 1);
    const dc_pk_value *r = dc_pickle_root(pk);
    assert_int_equal(r->kind, DC_PK_DICT);
    assert_int_equal(r->u.dict.len, 8);
    dc_pk_value **k = r->u.dict.keys, **v = r->u.dict.vals;
    assert_true(dc_pk_str_eq(k[0], "a"));
    assert_int_equal(v[0]->kind, DC_PK_INT);
    assert_int_equal(v[0]->u.i, 1);
    assert_int_equal(v[1]->kind, DC_PK_FLOAT);
    assert_true(v[1]->u.f == 1.5);
    assert_int_equal(v[2]->kind, DC_PK_LIST);
    assert_int_equal(v[2]->u.seq.len, 3);
    assert_int_equal(v[2]->u.seq.items[0]->kind, DC_PK_NONE);
    assert_true(v[2]->u.seq.items[1]->u.b);
    assert_false(v[2]->u.seq.items[2]->u.b);
    assert_int_equal(v[3]->kind, DC_PK_TUPLE);
    assert_int_equal(v[3]->u.seq.items[0]->u.i, -2);
    assert_int_equal(v[3]->u.seq.items[1]->u.i, 300);
    assert_int_equal(v[3]->u.seq.items[2]->u.i, 70000);
    assert_true(dc_pk_str_eq(v[4], "\xc3\xa9"));
    assert_int_equal(v[5]->kind, DC_PK_BYTES);
    assert_int_equal(v[6]->u.i, -1);
    assert_int_equal(v[7]->kind, DC_PK_BIGINT);
    assert_int_equal(v[7]->u.str.len, 9);
    /* offsets carry the caller's base */
    assert_int_equal(r->offset, 100 + 2);
    dc_pickle_free(pk);
}

static void test_memo_and_cycles(void **state) {
    (void)state;
    /* l = []; l.append(l): the graph may be cyclic, parsing and freeing must cope */
    dc_pickle *pk = NULL;
    assert_ok(parse(PK("\x80\x02]q\x00h\x00" "a."), &pk));
    const dc_pk_value *r = dc_pickle_root(pk);
    assert_int_equal(r->u.seq.len, 1);
    assert_ptr_equal(r->u.seq.items[0], r);
    dc_pickle_free(pk);
    /* protocol 4 MEMOIZE numbering + STACK_GLOBAL of an allowed global + FRAME */
    static const char p4[] = "\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00"
                             "\x8c\x0b" "collections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94" "0h\x02.";
    assert_ok(parse(PK(p4), &pk));
    assert_int_equal(dc_pickle_root(pk)->kind, DC_PK_GLOBAL);
    assert_int_equal(dc_pickle_root(pk)->u.global, DC_PKG_ORDERED_DICT);
    dc_pickle_free(pk);
}

static void test_os_system_refused(void **state) {
    (void)state;
    dc_pickle *pk = NULL;
    /* protocol 0, as in the classic exploit */
    assert_status(parse(PK("cos\nsystem\n(S'echo pwned'\ntR."), &pk), DC_ERR_UNSAFE_PICKLE);
    assert_detail_contains("os.system");
    assert_detail_contains("byte offset 0");
    assert_null(pk);
    /* protocol 2 GLOBAL */
    assert_status(parse(PK("\x80\x02\x63posix\nsystem\nq\x00X\x0a\x00\x00\x00" "echo pwnedq\x01\x85q\x02Rq\x03."),
                        &pk),
                  DC_ERR_UNSAFE_PICKLE);
    assert_detail_contains("posix.system");
    assert_detail_contains("byte offset 2");
    /* protocol 4 STACK_GLOBAL */
    assert_status(parse(PK("\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x85R."), &pk),
                  DC_ERR_UNSAFE_PICKLE);
    assert_detail_contains("os.system");
    assert_detail_contains("byte offset 16");
    /* nothing else that executes either */
    assert_status(parse(PK("\x80\x02\x63" "builtins\neval\n."), &pk), DC_ERR_UNSAFE_PICKLE);
    assert_detail_contains("builtins.eval");
    assert_status(parse(PK("\x80\x02\x63__builtin__\neval\n."), &pk), DC_ERR_UNSAFE_PICKLE);
    assert_detail_contains("__builtin__.eval");
    assert_status(parse(PK("\x80\x02\x63subprocess\nPopen\n."), &pk), DC_ERR_UNSAFE_PICKLE);
    assert_detail_contains("subprocess.Popen");
    assert_status(parse(PK("\x80\x02\x63torch\nload\n."), &pk), DC_ERR_UNSAFE_PICKLE);
    assert_detail_contains("torch.load");
    /* prefix tricks do not match */
    assert_status(parse(PK("\x80\x02\x63torch._utils\n_rebuild_tensor_v2x\n."), &pk), DC_ERR_UNSAFE_PICKLE);
    assert_status(parse(PK("\x80\x02\x63\x63ollections\nOrderedDict\x00\n."), &pk), DC_ERR_UNSAFE_PICKLE);
}

static void test_hostile_fixture_pickle(void **state) {
    (void)state;
    size_t len;
    uint8_t *buf = dc_test_read_file(dc_test_data_path("weights/hostile/os_system_p0.pkl"), &len);
    assert_non_null(buf);
    dc_pickle *pk = NULL;
    assert_status(parse(buf, len, &pk), DC_ERR_UNSAFE_PICKLE);
    assert_detail_contains("os.system");
    free(buf);
}

static void test_allowed_globals_are_not_callable_freely(void **state) {
    (void)state;
    dc_pickle *pk = NULL;
    /* torch.FloatStorage(...) would allocate: only allowed inside a persistent id */
    assert_status(parse(PK("\x80\x02\x63torch\nFloatStorage\n)R."), &pk), DC_ERR_UNSAFE_PICKLE);
    assert_detail_contains("calls torch.FloatStorage");
    /* OrderedDict with arguments */
    assert_status(parse(PK("\x80\x02\x63\x63ollections\nOrderedDict\n]\x85R."), &pk), DC_ERR_UNSAFE_PICKLE);
    assert_detail_contains("OrderedDict");
    /* BUILD on something other than a dict */
    assert_status(parse(PK("\x80\x02]}b."), &pk), DC_ERR_UNSAFE_PICKLE);
    assert_detail_contains("BUILD");
    /* REDUCE of a non-callable value */
    assert_status(parse(PK("\x80\x02K\x01)R."), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("not callable");
}

static void test_refused_opcodes(void **state) {
    (void)state;
    dc_pickle *pk = NULL;
    assert_status(parse(PK("(ios\nsystem\n."), &pk), DC_ERR_UNSAFE_PICKLE);
    assert_detail_contains("INST");
    assert_status(parse(PK("\x80\x02(\x63\x63ollections\nOrderedDict\no."), &pk), DC_ERR_UNSAFE_PICKLE);
    assert_detail_contains("OBJ");
    assert_status(parse(PK("\x80\x02\x63\x63ollections\nOrderedDict\n)\x81."), &pk), DC_ERR_UNSAFE_PICKLE);
    assert_detail_contains("NEWOBJ");
    assert_status(parse(PK("\x80\x02\x82\x01."), &pk), DC_ERR_UNSAFE_PICKLE);
    assert_detail_contains("EXT1");
    assert_status(parse(PK("\x80\x02P1\n."), &pk), DC_ERR_UNSAFE_PICKLE);
    assert_detail_contains("PERSID");
}

static void test_unknown_opcode(void **state) {
    (void)state;
    dc_pickle *pk = NULL;
    assert_status(parse(PK("\x80\x02K\x01\xff."), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("0xff");
    assert_detail_contains("byte offset 4");
    assert_status(parse(PK("\x80\x09."), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("protocol");
}

static void test_deep_nesting(void **state) {
    (void)state;
    size_t n = 100000;
    uint8_t *buf = malloc(2 + 2 * n + 1);
    buf[0] = 0x80;
    buf[1] = 2;
    for (size_t i = 0; i < n; i++) {
        buf[2 + 2 * i] = '(';
        buf[3 + 2 * i] = ']';
    }
    buf[2 + 2 * n] = '.';
    dc_pickle *pk = NULL;
    assert_status(parse(buf, 2 + 2 * n + 1, &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("MARKs nested too deep");
    free(buf);
    /* without marks: the value stack is bounded too */
    n = 300000;
    buf = malloc(2 + n + 1);
    buf[0] = 0x80;
    buf[1] = 2;
    memset(buf + 2, ']', n);
    buf[2 + n] = '.';
    assert_status(parse(buf, 2 + n + 1, &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("stack deeper than the limit");
    free(buf);
    /* a list nested 100000 deep through APPEND parses (no recursion) and frees */
    n = 100000;
    buf = malloc(2 + 2 * n + 1);
    buf[0] = 0x80;
    buf[1] = 2;
    for (size_t i = 0; i < n; i++) buf[2 + i] = ']';
    for (size_t i = 0; i + 1 < n; i++) buf[2 + n + i] = 'a';
    buf[2 + 2 * n - 1] = '.';
    assert_ok(parse(buf, 2 + 2 * n, &pk));
    dc_pickle_free(pk);
    free(buf);
}

static void test_memo_errors(void **state) {
    (void)state;
    dc_pickle *pk = NULL;
    assert_status(parse(PK("\x80\x02h\x05."), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("memo index 5");
    assert_status(parse(PK("\x80\x02j\x00\x00\x00\x01."), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("memo index 16777216");
    assert_status(parse(PK("\x80\x02Nr\xff\xff\xff\xff."), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("memo index too large");
    assert_status(parse(PK("\x80\x02q\x00."), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("underflow");
}

static void test_structure_errors(void **state) {
    (void)state;
    dc_pickle *pk = NULL;
    assert_status(parse(PK("\x80\x02."), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("STOP");
    assert_status(parse(PK("\x80\x02NN."), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_status(parse(PK("\x80\x02(N."), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("MARK");
    assert_status(parse(PK("\x80\x02]NNs."), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("SETITEM on something not a dict");
    assert_status(parse(PK("\x80\x02}Na."), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("APPEND");
    assert_status(parse(PK("\x80\x02}(Nu."), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("odd number");
    assert_status(parse(PK("\x80\x02(Nt0."), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_status(parse(PK("\x80\x02X\xff\xff\xff\x7f."), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("past the end");
    assert_status(parse(PK("\x80\x02X\x01\x00\x00\x00\xff."), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("UTF-8");
    assert_status(parse(PK("\x80\x02T\xff\xff\xff\xff."), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_status(parse(PK("\x80\x02N"), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("without a STOP");
    assert_status(parse(PK("\x80\x02\x63os"), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("newline");
    /* a mark pushed inside a tuple cannot be popped by a plain pop */
    assert_status(parse(PK("\x80\x02N(0."), &pk), DC_ERR_CHECKPOINT_CORRUPTED);
    assert_detail_contains("underflow");
}

static void test_sequence_of_pickles(void **state) {
    (void)state;
    /* the legacy torch format is several pickles back to back */
    static const char two[] = "\x80\x02K\x07.\x80\x02M\xe9\x03.";
    dc_pickle *pk = NULL;
    size_t used;
    assert_ok(dc_pickle_parse(PK(two), 0, "t", &pk, &used));
    assert_int_equal(used, 5);
    assert_int_equal(dc_pickle_root(pk)->u.i, 7);
    dc_pickle_free(pk);
    assert_ok(dc_pickle_parse((const uint8_t *)two + used, sizeof two - 1 - used, used, "t", &pk, NULL));
    assert_int_equal(dc_pickle_root(pk)->u.i, 1001);
    assert_int_equal(dc_pickle_root(pk)->offset, 7);
    dc_pickle_free(pk);
}

static void test_torch_data_pkl(void **state) {
    (void)state;
    size_t len;
    uint8_t *file = dc_test_read_file(dc_test_data_path("weights/pytorch_model.bin"), &len);
    assert_non_null(file);
    dc_zip *z = NULL;
    assert_ok(dc_zip_open(file, len, "t", &z));
    const dc_zip_entry *e = dc_zip_find(z, "pytorch_model/data.pkl");
    assert_non_null(e);
    const uint8_t *pkl;
    void *owned;
    assert_ok(dc_zip_read(z, e, &pkl, &owned));
    dc_pickle *pk = NULL;
    assert_ok(parse(pkl, (size_t)e->size, &pk));
    const dc_pk_value *r = dc_pickle_root(pk);
    assert_int_equal(r->kind, DC_PK_DICT);
    assert_int_equal(r->u.dict.len, 13);
    assert_true(dc_pk_str_eq(r->u.dict.keys[0], "encoder.weight"));
    const dc_pk_value *t = r->u.dict.vals[0];
    assert_int_equal(t->kind, DC_PK_CALL);
    assert_int_equal(t->u.call.fn, DC_PKG_REBUILD_TENSOR_V2);
    /* the tied tensor is the very same node (memo) */
    for (size_t i = 0; i < r->u.dict.len; i++)
        if (dc_pk_str_eq(r->u.dict.keys[i], "decoder.weight")) assert_ptr_equal(r->u.dict.vals[i], t);
    assert_int_equal(dc_pickle_persid_count(pk), 12);
    /* every truncation fails cleanly */
    for (size_t n = 0; n < e->size; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, pkl, n);
        dc_pickle *q = NULL;
        if (parse(copy, n, &q) == DC_OK) fail_msg("prefix %zu accepted", n);
        free(copy);
    }
    dc_pickle_free(pk);
    dc_zip_close(z);
    free(file);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_memo_and_cycles),
        cmocka_unit_test(test_os_system_refused),
        cmocka_unit_test(test_hostile_fixture_pickle),
        cmocka_unit_test(test_allowed_globals_are_not_callable_freely),
        cmocka_unit_test(test_refused_opcodes),
        cmocka_unit_test(test_unknown_opcode),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_memo_errors),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_sequence_of_pickles),
        cmocka_unit_test(test_torch_data_pkl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
