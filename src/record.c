/*
 * record: names of the request outcomes, as written in the CSV log.
 */
#include "record.h"

const char *record_error_str(enum record_error e)
{
    switch (e) {
    case RECORD_OK:
        return "";
    case RECORD_BAD_REQUEST:
        return "bad_request";
    case RECORD_CONNECT:
        return "connect";
    case RECORD_TIMEOUT:
        return "timeout";
    case RECORD_UPSTREAM_RESET:
        return "upstream_reset";
    case RECORD_BAD_RESPONSE:
        return "bad_response";
    case RECORD_CLIENT_CLOSED:
        return "client_closed";
    case RECORD_CLIENT_TIMEOUT:
        return "client_timeout";
    case RECORD_SHUTDOWN:
        return "shutdown";
    case RECORD_UPSTREAM_TLS:
        return "upstream_tls";
    }
    return "unknown";
}
