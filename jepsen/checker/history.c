/* Event storage for parsed histories. */
#include "history.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

void rp_history_init(struct rp_history *h)
{
	memset(h, 0, sizeof *h);
	rp_key_table_init(&h->keys);
}

void rp_history_close(struct rp_history *h)
{
	for (size_t i = 0; i < h->n_events; i++) {
		rp_value_free(&h->events[i].value);
		free(h->events[i].note);
	}
	free(h->events);
	rp_key_table_close(&h->keys);
	memset(h, 0, sizeof *h);
}

void rp_value_free(struct rp_value *v)
{
	free(v->items);
	v->items = NULL;
	v->n_items = 0;
}

int rp_history_append(struct rp_history *h, struct rp_event *ev, char *errmsg)
{
	int rv;

	if (h->n_events >= RP_HISTORY_MAX_EVENTS) {
		rv = rp_chk_errorf(errmsg, RP_CHK_ELIMIT, "more than %zu events",
				   RP_HISTORY_MAX_EVENTS);
		goto err_free_event;
	}
	if (h->n_events == h->cap_events) {
		size_t cap = h->cap_events ? h->cap_events * 2 : 256;
		struct rp_event *events = realloc(h->events, cap * sizeof *events);
		if (events == NULL) {
			rv = rp_chk_errorf(errmsg, RP_CHK_ENOMEM, "event array");
			goto err_free_event;
		}
		h->events = events;
		h->cap_events = cap;
	}
	h->events[h->n_events++] = *ev;
	return RP_CHK_OK;

err_free_event:
	rp_value_free(&ev->value);
	free(ev->note);
	ev->note = NULL;
	return rv;
}

const char *rp_history_key(const struct rp_history *h, uint32_t id)
{
	return id == RP_KEY_ABSENT ? "" : rp_key_table_name(&h->keys, id);
}

const char *rp_ev_type_name(enum rp_ev_type t)
{
	static const char *const names[] = {"invoke", "ok", "fail", "info"};

	return (unsigned)t < 4 ? names[t] : "?";
}

const char *rp_fn_name(enum rp_fn f)
{
	switch (f) {
	case RP_FN_READ: return "read";
	case RP_FN_WRITE: return "write";
	case RP_FN_CAS: return "cas";
	case RP_FN_ADD: return "add";
	case RP_FN_FINAL_READ: return "final-read";
	case RP_FN_OTHER: return "other";
	}
	return "?";
}
