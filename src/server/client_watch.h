/* Cancels the embedding work of clients that went away.
 *
 * With a thread per connection, the thread of a request that waits in the pipeline reads
 * nothing from its socket, so a client that gives up (a timeout, a closed tab, a proxy's
 * retry) would go unnoticed until the answer is written, after the batch ran for nobody. One
 * watcher thread polls the sockets of the requests in the pipeline and cancels the token of
 * one whose peer closed or reset it; the pipeline then drops or discards its items
 * (DC_ERR_CANCELLED, answered 499). A peer that only half-closes its side after sending counts
 * as gone, as in most HTTP servers; data the client sends meanwhile does not. */
#ifndef DC_SERVER_CLIENT_WATCH_H
#define DC_SERVER_CLIENT_WATCH_H

#include <stdint.h>

#include "dodeca/pipeline.h"

typedef struct dc_client_watch dc_client_watch;

/* A watcher with room for `capacity` sockets at once, and its thread. */
dc_status dc_client_watch_start(uint32_t capacity, dc_client_watch **out);
/* Stops the thread and frees the watcher; nothing may be watched any more. */
void dc_client_watch_stop(dc_client_watch *w);

/* Watches fd until dc_client_watch_remove(*slot): when its peer goes away, t is cancelled.
 * DC_ERR_OVERLOADED when every slot is taken (the request then runs unwatched). */
dc_status dc_client_watch_add(dc_client_watch *w, int fd, dc_cancel_token *t, uint32_t *slot);
/* Stops watching; after it returns, the token is never touched again. */
void dc_client_watch_remove(dc_client_watch *w, uint32_t slot);

#endif
