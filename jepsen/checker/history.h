/* The event-level history model: what a parser produces. */
#ifndef RP_CHECKER_HISTORY_H
#define RP_CHECKER_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "key_table.h"

/** Most events accepted in one history. */
#define RP_HISTORY_MAX_EVENTS ((size_t)1 << 26)
/** Most elements accepted in one list value (a final set read). */
#define RP_VALUE_MAX_ITEMS ((size_t)1 << 24)
/** Key id of an event whose line carried no key. */
#define RP_KEY_ABSENT UINT32_MAX

enum rp_ev_type {
	RP_EV_INVOKE,
	RP_EV_OK,
	RP_EV_FAIL,
	RP_EV_INFO
};

enum rp_fn {
	RP_FN_READ,
	RP_FN_WRITE,
	RP_FN_CAS,
	RP_FN_ADD,
	RP_FN_FINAL_READ,
	RP_FN_OTHER, /* nemesis or anything the checkers ignore */
};

enum rp_val_kind {
	RP_VAL_ABSENT, /* no value, or one we do not interpret (":timed-out") */
	RP_VAL_NIL,    /* register unset / JSON null */
	RP_VAL_INT,    /* a */
	RP_VAL_PAIR,   /* [a b], a cas */
	RP_VAL_LIST,   /* items[0..n_items), a set read */
};

/** A value. LIST items are owned by whoever owns the value (see below). */
struct rp_value {
	enum rp_val_kind kind;
	int64_t a, b;
	int64_t *items;
	size_t n_items;
};

/** One line of a history. */
struct rp_event {
	size_t line;     /* 1-based input line, for messages */
	int64_t index;   /* index as recorded in the input (display only) */
	int64_t time;    /* nanoseconds as recorded, -1 if absent */
	int64_t process; /* meaningless when nemesis */
	bool nemesis;
	enum rp_ev_type type;
	enum rp_fn fn;
	uint32_t key;          /* id in the history's key table or ABSENT */
	struct rp_value value; /* LIST items owned by the history */
	char *note;            /* nemesis description, owned by the history */
};

/**
 * Caller-embedded history. Owns its events array, every event's list items
 * and note, and the key table. Events are in input order; positions in
 * events[] are the time axis the checkers use.
 */
struct rp_history {
	struct rp_event *events;
	size_t n_events, cap_events;
	struct rp_key_table keys;
};

void rp_history_init(struct rp_history *h);
/** Frees everything the history owns. */
void rp_history_close(struct rp_history *h);

/**
 * Appends a copy of *ev. Ownership of ev->value.items and ev->note passes
 * to the history whether or not the call succeeds (they are freed on
 * error). Returns RP_CHK_OK, RP_CHK_ELIMIT or RP_CHK_ENOMEM.
 */
int rp_history_append(struct rp_history *h, struct rp_event *ev, char *errmsg);

/** Key string for @id (borrowed); "" for RP_KEY_ABSENT. */
const char *rp_history_key(const struct rp_history *h, uint32_t id);

/** Frees the items of a value not yet handed to a history. */
void rp_value_free(struct rp_value *v);

/** Static names: "invoke|ok|fail|info" and "read|write|...". */
const char *rp_ev_type_name(enum rp_ev_type t);
const char *rp_fn_name(enum rp_fn f);

#endif /* RP_CHECKER_HISTORY_H */
