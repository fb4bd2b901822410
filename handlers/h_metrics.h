/* h_metrics.h: GET /metrics, the Prometheus text format (version 0.0.4) on
 * the 1-way listener.  Behind the admin API key unless `metrics_public yes`.
 * One Redis call per scrape (store_stats: O(1)); everything else is read
 * from the modules' counters.  The series are listed in docs/METRICS.md. */
#ifndef MDMD_H_METRICS_H
#define MDMD_H_METRICS_H

struct req;
void h_metrics(struct req *req, void *app);

#endif
