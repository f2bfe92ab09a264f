/* CUDA graphs for the forwards of fixed shapes (dc_backend_ops.graph_*).
 *
 * A small batch spends much of its time launching: BERT-base is about 120 kernels and GEMMs a
 * forward, each a few microseconds of host work. Recorded once, the same forward is one
 * cudaGraphLaunch.
 *
 * Recording. graph_begin gives the calling thread a copy of the stream context (dc_cu_of
 * returns it to that thread only) whose stream is the context's capture stream, whose cuBLAS
 * handle works in the graphs' own workspace and whose pool view keeps what it allocates
 * (dc_pool_rec). The capture is relaxed: the pool may still cudaMalloc. Other threads keep
 * using the context's own stream, handle and workspace, unaffected. Host arrays an op stages
 * (attention plans) are uploaded at once on the context's own stream into blocks the graph
 * keeps: a graph replays the plan it was recorded with, which is why callers key their graphs
 * by everything such arrays depend on.
 *
 * Replay. A graph is launched on the context's own stream, so it runs after everything enqueued
 * there before it (the inputs the caller wrote) and before what comes after (the download).
 * Its blocks leave the recording only when it is destroyed, after the stream is idle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/cu_internal.h"

_Thread_local dc_cu_recording *dc_cu_tl_recording;

struct dc_graph {
    cudaGraphExec_t exec;
    dc_pool_rec rec; /* the intermediate buffers its nodes use */
    size_t nodes;
};

static void note_failure(dc_cu_backend *cb, const char *what, cudaError_t e) {
    pthread_mutex_lock(&cb->graph_st_mu);
    cb->graph_st.failures++;
    snprintf(cb->graph_st.last_failure, sizeof cb->graph_st.last_failure, "%s%s%s", what,
             e != cudaSuccess ? ": " : "", e != cudaSuccess ? cudaGetErrorName(e) : "");
    pthread_mutex_unlock(&cb->graph_st_mu);
}

/* The capture stream (on the context's green partition, if any), its cuBLAS handle and the
 * workspace, made at the first recording (rec_mu held). */
static dc_status recording_resources(dc_cu_backend *cb) {
    if (cb->rec_blas) return DC_OK;
    dc_status st = DC_OK;
    if (!cb->rec_stream) {
        if (cb->partition >= 0)
            st = dc_cu_green_stream(cb->dev, (uint32_t)cb->partition, &cb->rec_stream);
        else
            st = dc_cu_status(cudaStreamCreateWithFlags(&cb->rec_stream, cudaStreamNonBlocking),
                              "graph capture stream");
        if (st) {
            cb->rec_stream = NULL;
            return st;
        }
    }
    if (!cb->rec_workspace &&
        (st = dc_pool_weights_alloc(&cb->pool, cb->workspace_bytes, &cb->rec_workspace)))
        return dc_cu_fail(st, "graphs: no room for their %zu MiB cuBLAS workspace",
                          cb->workspace_bytes >> 20);
    return dc_cu_blas_create(cb->rec_stream, cb->rec_workspace, cb->workspace_bytes,
                             &cb->rec_blas);
}

dc_status dc_cu_recording_break(dc_cu_backend *cb, const char *what) {
    if (cb->recording && !cb->recording->broken) cb->recording->broken = what;
    return dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "%s inside a graph recording (it waits for the device)",
                      what);
}

dc_status dc_cu_graph_begin(dc_backend *be) {
    dc_cu_backend *cb = (dc_cu_backend *)be->impl;
    if (!cb->graphs) return dc_cu_fail(DC_ERR_UNSUPPORTED_FORMAT, "graphs are off for this context");
    if (dc_cu_tl_recording)
        return dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "graph_begin: this thread is already recording");
    /* a failure the thread's earlier void ops left stays for its next op (the caller's
     * direct run or the launch) to return: not taken here */
    dc_status st = dc_cu_enter(cb);
    if (st) return st;
    if (pthread_mutex_trylock(&cb->rec_mu) != 0)
        return dc_cu_fail(DC_ERR_OVERLOADED, "graph_begin: another thread is recording on this context");
    dc_cu_recording *r = calloc(1, sizeof *r);
    if (!r) st = dc_cu_fail(DC_ERR_OUT_OF_MEMORY, "graph recording");
    if (!st && (st = recording_resources(cb)))
        note_failure(cb, "no capture stream, cuBLAS handle or workspace", cudaSuccess);
    if (st) {
        free(r);
        pthread_mutex_unlock(&cb->rec_mu);
        return st;
    }
    /* the copy: what the ops read, field by field (the context's locks and statistics are
     * its own and stay there) */
    r->owner = cb;
    dc_cu_backend *c = &r->shadow;
    c->device = cb->device;
    c->cc_major = cb->cc_major;
    c->cc_minor = cb->cc_minor;
    c->allow_tf32 = cb->allow_tf32;
    c->stream = cb->rec_stream;
    c->blas = cb->rec_blas;
    c->lt = cb->lt; /* cuBLASLt takes its stream and workspace per call */
    c->workspace = cb->rec_workspace;
    c->workspace_bytes = cb->workspace_bytes;
    c->pool = cb->pool; /* the context's stream: replays run there */
    r->rec.home = &cb->pool;
    c->pool.rec = &r->rec;
    c->dev = cb->dev;
    c->partition = cb->partition;
    c->recording = r;
    pthread_mutex_init(&c->blas_mu, NULL);
    if ((st = dc_cu_status(cudaStreamBeginCapture(cb->rec_stream, cudaStreamCaptureModeRelaxed),
                           "cudaStreamBeginCapture"))) {
        pthread_mutex_destroy(&r->shadow.blas_mu);
        free(r);
        pthread_mutex_unlock(&cb->rec_mu);
        return st;
    }
    dc_cu_tl_recording = r;
    return DC_OK;
}

dc_status dc_cu_graph_end(dc_backend *be, dc_graph **out) {
    *out = NULL;
    dc_cu_backend *cb = (dc_cu_backend *)be->impl;
    dc_cu_recording *r = dc_cu_tl_recording;
    if (!r || r->owner != cb)
        return dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "graph_end: this thread is not recording here");
    dc_cu_tl_recording = NULL;
    /* an op that failed while recording: the graph would lack it */
    dc_status failed = dc_cu_take_sticky(&r->shadow);
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamEndCapture(cb->rec_stream, &graph);
    dc_graph *g = NULL;
    const char *what = r->broken ? r->broken : failed ? "an op failed while recording" : NULL;
    if (r->broken && !failed)
        failed = dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "graph_end: %s inside the recording", r->broken);
    dc_status st = failed;
    if (!st && e != cudaSuccess) st = dc_cu_status(e, what = "cudaStreamEndCapture");
    if (!st && !(g = calloc(1, sizeof *g))) st = dc_cu_fail(DC_ERR_OUT_OF_MEMORY, what = "graph");
    if (!st && (e = cudaGraphGetNodes(graph, NULL, &g->nodes)) != cudaSuccess)
        st = dc_cu_status(e, what = "cudaGraphGetNodes");
    if (!st && (e = cudaGraphInstantiate(&g->exec, graph, 0)) != cudaSuccess)
        st = dc_cu_status(e, what = "cudaGraphInstantiate");
    if (graph) cudaGraphDestroy(graph);
    (void)cudaGetLastError(); /* a failed capture is reported by status, not left sticky */
    pthread_mutex_destroy(&r->shadow.blas_mu);
    dc_pool_rec_end(&r->rec);
    if (st) {
        /* nothing of the recording ran: its blocks go back as they are */
        note_failure(cb, what, failed ? cudaSuccess : e);
        dc_pool_rec_free(&r->rec);
        free(g);
        free(r);
        pthread_mutex_unlock(&cb->rec_mu);
        return st;
    }
    g->rec = r->rec;
    free(r);
    pthread_mutex_lock(&cb->graph_st_mu);
    cb->graph_st.recorded++;
    cb->graph_st.alive++;
    cb->graph_st.nodes += g->nodes;
    cb->graph_st.bytes += g->rec.bytes;
    pthread_mutex_unlock(&cb->graph_st_mu);
    pthread_mutex_unlock(&cb->rec_mu);
    *out = g;
    return DC_OK;
}

dc_status dc_cu_graph_launch(dc_backend *be, dc_graph *g) {
    dc_cu_backend *cb = dc_cu_of(be);
    if (!g) return dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "graph_launch: NULL graph");
    if (cb->recording)
        return dc_cu_fail(DC_ERR_INVALID_ARGUMENT, "graph_launch: inside a recording");
    dc_status st = dc_cu_enter(cb);
    if (st || (st = dc_cu_take_sticky(cb))) return st;
    if ((st = dc_cu_status(cudaGraphLaunch(g->exec, cb->stream), "cudaGraphLaunch"))) return st;
    pthread_mutex_lock(&cb->graph_st_mu);
    cb->graph_st.launches++;
    pthread_mutex_unlock(&cb->graph_st_mu);
    return DC_OK;
}

void dc_cu_graph_destroy(dc_backend *be, dc_graph *g) {
    if (!g) return;
    dc_cu_backend *cb = (dc_cu_backend *)be->impl;
    if (dc_cu_enter(cb) == DC_OK) cudaStreamSynchronize(cb->stream); /* no launch still runs */
    cudaGraphExecDestroy(g->exec);
    pthread_mutex_lock(&cb->graph_st_mu);
    cb->graph_st.alive--;
    cb->graph_st.nodes -= g->nodes;
    cb->graph_st.bytes -= g->rec.bytes;
    pthread_mutex_unlock(&cb->graph_st_mu);
    dc_pool_rec_free(&g->rec);
    free(g);
}

void dc_cu_graph_stats(dc_backend *be, dc_cuda_graph_stats *out) {
    dc_cu_backend *cb = (dc_cu_backend *)be->impl;
    pthread_mutex_lock(&cb->graph_st_mu);
    *out = cb->graph_st;
    pthread_mutex_unlock(&cb->graph_st_mu);
}

void dc_cu_graph_context_free(dc_cu_backend *cb) {
    if (cb->rec_blas) cublasDestroy(cb->rec_blas);
    if (cb->rec_workspace) dc_pool_weights_free(&cb->pool, cb->rec_workspace);
    if (cb->rec_stream && cb->partition >= 0) dc_cu_green_stream_destroy(cb->rec_stream);
    else if (cb->rec_stream) cudaStreamDestroy(cb->rec_stream);
    cb->rec_blas = NULL;
    cb->rec_workspace = NULL;
    cb->rec_stream = NULL;
}
