/*
 * weft_http: outbound HTTP for weft actors (import module "weft_http").
 *
 * The host makes the request (undici) and checks it against the actor's
 * `capabilities.outboundHttp` allowlist first: scheme, host and port, then every address the
 * name resolves to (loopback, link-local, private and metadata addresses only when granted
 * themselves), and again on each redirect. Calls that wait (send, read) block the guest; the host
 * suspends it and serves others meanwhile.
 *
 * A request:
 *     int32_t req = weft_http_request("GET", 3, url, strlen(url));
 *     weft_http_header(req, "accept", 6, "text/plain", 10);      // any number
 *     weft_http_write(req, body, body_len);                      // optional, any number of pieces
 *     int32_t status = weft_http_send(req);                      // waits for the response head
 *     char buf[4096]; int32_t n;
 *     while ((n = weft_http_read(req, buf, sizeof buf)) > 0) ...  // the body, 0 at its end
 *     weft_http_close(req);
 * Every call returns a negative WEFT_HTTP_E* code on failure; weft_http_error() then gives the
 * host's reason as text (which rule denied which URL, what timed out).
 */
#ifndef WEFT_HTTP_H
#define WEFT_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* Failures, as negative return values. */
#define WEFT_HTTP_EDENIED -1   /* not granted by capabilities.outboundHttp */
#define WEFT_HTTP_EBADURL -2   /* not an absolute http(s) URL */
#define WEFT_HTTP_ETIMEOUT -3  /* no complete response within the invocation's time */
#define WEFT_HTTP_ETOOLARGE -4 /* the response body is over limits.maxResponseBytes */
#define WEFT_HTTP_ECONNECT -5  /* could not connect, or the connection failed */
#define WEFT_HTTP_EPROTOCOL -6 /* a bad method or header (at send), or not a valid response */
#define WEFT_HTTP_ELIMIT -7    /* over limits.maxOutboundRequests for this invocation */
#define WEFT_HTTP_EBADHANDLE -8 /* no such request, or the call is out of order */
#define WEFT_HTTP_EFAULT -9    /* a pointer or length outside the guest's memory */

#define WEFT_HTTP_IMPORT(name) __attribute__((import_module("weft_http"), import_name(name)))

/* Start a request; returns its handle (>= 0). Nothing is sent yet. */
WEFT_HTTP_IMPORT("request")
int32_t weft_http_request(const char *method, size_t method_len, const char *url, size_t url_len);

/* Add a request header (Host, Connection and other hop-by-hop fields are the host's). */
WEFT_HTTP_IMPORT("header")
int32_t weft_http_header(int32_t req, const char *name, size_t name_len, const char *value,
                         size_t value_len);

/* Append to the request body (it is sent as it is written once sending starts). */
WEFT_HTTP_IMPORT("write")
int32_t weft_http_write(int32_t req, const void *data, size_t len);

/* End the request body and wait for the response head; returns the HTTP status. */
WEFT_HTTP_IMPORT("send")
int32_t weft_http_send(int32_t req);

/*
 * The response's header fields as "name: value\n" lines (names lower-case) into buf; returns
 * the bytes the whole list takes (call again with a larger buffer when that is more than len).
 */
WEFT_HTTP_IMPORT("headers")
int32_t weft_http_headers(int32_t req, char *buf, size_t len);

/* Read the next bytes of the response body; returns how many, 0 at its end. */
WEFT_HTTP_IMPORT("read")
int32_t weft_http_read(int32_t req, void *buf, size_t len);

/* Release the request (and its connection, if the body was not read to the end). */
WEFT_HTTP_IMPORT("close")
int32_t weft_http_close(int32_t req);

/* The last failure's reason, NUL-terminated, truncated to len; returns its full length. */
WEFT_HTTP_IMPORT("error")
int32_t weft_http_error(char *buf, size_t len);

#endif
