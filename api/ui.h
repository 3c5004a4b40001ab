/* The web dashboard's static files at /ui/ (ui.c): the files of ui/ are
 * compiled into the binary at build time (cmake/EmbedUi.cmake), nothing is
 * read from disk or fetched at run time. */
#ifndef RP_API_UI_H
#define RP_API_UI_H

#include <stddef.h>

struct rp_ui_asset {
	const char *name;  /* file name under /ui/, e.g. "app.js"; NULL ends the table */
	const char *ctype; /* Content-Type */
	const unsigned char *data;
	size_t len;
	const char *etag; /* quoted, e.g. "\"0123456789abcdef\"" */
};

/** Every file of ui/, ended by an entry whose name is NULL (generated). */
extern const struct rp_ui_asset rp_ui_assets[];

/** The asset named @name (@len bytes), or NULL. "" is index.html. */
const struct rp_ui_asset *rp_ui_find(const char *name, size_t len);

struct rp_call;
/** GET /ui: a redirect to /ui/ (the page's relative links need the slash). */
void rp_route_ui_redirect(struct rp_call *c);
/** GET /ui/{file}: the file with its ETag (304 on a matching If-None-Match),
 * Content-Security-Policy default-src 'self', nosniff; 404 for any other
 * name. */
void rp_route_ui(struct rp_call *c, const char *name, size_t len);

#endif
