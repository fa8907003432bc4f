"""A year of use, in small: paged job listings read from Redis's sorted
indexes (cursor, total, Link, ?since=), bounded scheduler lists, the
indexes built for a store from before them, and retention removing finished
jobs everywhere (record, indexes, routing, tracking, log, working directory,
archive), against a real atlas-server and Redis."""

import json
import os
import re
import subprocess
import time

import harness
from harness import Node, wait_until
from dashboard_jobs import submit

RETENTION = """retention:
  interval_s: 1
  batch: 2
  projects:
    keep3: {max_jobs: 3}
    brief: {max_age: 3s}
"""

node = Node(slots=4, atlas_config=RETENTION).start()


def redis_cli(*args):
    r = subprocess.run(["redis-cli", "-p", str(node.redis.port), "--raw", *args],
                       capture_output=True, text=True, timeout=10, check=True)
    return r.stdout.strip()


def run_jobs(project, count, main_py="print('hi')\n"):
    ids = [submit(node, main_py, project=project) for _ in range(count)]
    for job_id in ids:
        node.wait_for_status(job_id, ["completed"], timeout=60)
    return ids


def listing(project, query=""):
    status, raw = node.request("GET", f"/api/v2beta/projects/{project}/job_listing{query}")
    return status, (json.loads(raw) if status == 200 else raw)


def listing_headers(project, query):
    import urllib.request
    with urllib.request.urlopen(f"{node.url}/api/v2beta/projects/{project}/job_listing{query}",
                                timeout=15) as r:
        return dict(r.headers), json.loads(r.read())


PAGED = run_jobs("paged", 23)
# Jobs logging a metric and a parameter: numbers (two tie), a text, none.
LOSSES = [0.5, 0.25, 0.75, 0.25, "n/a", None, 1.5, 0.125]
SCORED = [run_jobs("scored", 1, "import foundations\n"
                   + (f"foundations.log_metric('loss', {v!r})\n" if v is not None else "")
                   + f"foundations.log_param('depth', {i})\n")[0]
          for i, v in enumerate(LOSSES)]
wait_until(lambda: redis_cli("GET", "atlas:index:built") == "2", 30, "the indexes to be built")


def test_pages_walk_every_job_once_newest_first():
    seen, cursor, pages = [], None, 0
    while True:
        q = "?limit=5" + (f"&cursor={cursor}" if cursor else "")
        status, page = listing("paged", q)
        assert status == 200, page
        assert page["total"] == 23, page["total"]
        assert len(page["jobs"]) <= 5
        seen += [j["job_id"] for j in page["jobs"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 5, pages
    assert seen == list(reversed(PAGED)), (seen, PAGED)
    # Unpaged, as the original asked: every job (up to the cap), same shape.
    status, whole = listing("paged")
    assert status == 200 and [j["job_id"] for j in whole["jobs"]] == seen
    assert whole["next_cursor"] is None and whole["total"] == 23
    # The project list, from the indexes too.
    status, projects = node.json("GET", "/api/v2beta/projects")
    mine = [p for p in projects if p["name"] == "paged"]
    assert status == 200 and len(mine) == 1, projects
    assert (mine[0]["jobs"], mine[0]["active_jobs"], mine[0]["owner"]) == (23, 0, "alice"), mine
    assert mine[0]["created_at"] <= mine[0]["last_activity"], mine


def test_link_header_names_the_next_page():
    headers, page = listing_headers("paged", "?limit=10")
    link = headers.get("Link", "")
    m = re.fullmatch(r"</api/v2beta/projects/paged/job_listing\?(.*)>; rel=\"next\"", link)
    assert m, link
    status, nxt = listing("paged", "?" + m.group(1))
    assert status == 200
    assert nxt["jobs"][0]["job_id"] == PAGED[-11], nxt["jobs"][0]


def test_since_answers_unchanged_until_something_is_written():
    status, page = listing("paged", "?limit=3")
    version = page["version"]
    assert listing("paged", f"?limit=3&since={version}")[1] == {"unchanged": True, "version": version}
    # A tag from the page changes what a listing shows.
    job_id = PAGED[0]
    status, _ = node.json("POST", f"/api/v2beta/projects/paged/job_listing/{job_id}/tags",
                          {"tag": {"key": "seen", "value": "yes"}})
    assert status == 200
    status, again = listing("paged", f"?limit=3&since={version}")
    assert "jobs" in again and again["version"] > version, again


def walk(project, query):
    """Every job id of a listing, page after page; the cursors seen."""
    seen, cursors, cursor = [], [], None
    while True:
        status, page = listing(project, query + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200, page
        seen += [j["job_id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen, cursors
        cursors.append(cursor)


def test_a_status_filter_pages_from_its_own_index():
    seen, cursors = walk("paged", "?status=completed&limit=9")
    assert seen == list(reversed(PAGED)), seen
    assert cursors and not any(c.startswith("@") for c in cursors), cursors  # the index, not a scan
    status, page = listing("paged", "?status=running&limit=9")
    assert status == 200 and page["jobs"] == [] and page["total"] == 0, page


def test_filtered_and_sorted_pages_use_offsets():
    seen, cursors = walk("paged", "?sort=job_id&user=alice&limit=7")
    assert seen == sorted(PAGED), seen
    assert cursors and all(c.startswith("@") for c in cursors), cursors
    # Such a page reads the project's newest jobs (at most 10,000) and says so.
    status, page = listing("paged", "?user=alice&limit=2")
    assert status == 200 and page["scanned_jobs"] == page["project_jobs"] == 23, page
    assert "scanned_jobs" not in listing("paged", "?limit=2")[1]


def scored_order(descending):
    """SCORED as a listing sorted by loss shows it from the index: numbers
    in order (ties by id), then the rest newest first."""
    numbers = sorted(((v, j) for v, j in zip(LOSSES, SCORED) if isinstance(v, float)),
                     reverse=descending)
    rest = [j for v, j in zip(LOSSES, SCORED) if not isinstance(v, float)]
    return [j for _, j in numbers] + list(reversed(rest))


def test_a_metric_or_parameter_sort_pages_from_its_index():
    for query, descending in [("?sort=-loss&limit=3", True), ("?sort=metric:loss&limit=2", False)]:
        seen, cursors = walk("scored", query)
        assert seen == scored_order(descending), (query, seen, scored_order(descending))
        assert cursors and not any(c.startswith("@") for c in cursors), cursors
        # The order a whole read of the project sorts in, numbers first.
        status, scanned = listing("scored", query.split("&")[0] + "&user=alice")
        numbers = sum(isinstance(v, float) for v in LOSSES)
        loss = {j: v for j, v in zip(SCORED, LOSSES)}
        assert [loss[j["job_id"]] for j in scanned["jobs"]][:numbers] == \
            [loss[j] for j in seen[:numbers]], scanned
    seen, _ = walk("scored", "?sort=-param:depth&limit=4")
    assert seen == list(reversed(SCORED)), seen
    # An unknown column is still a clear 400.
    status, body = listing("scored", "?sort=-nosuchmetric&limit=3")
    assert status == 400 and b"nosuchmetric" in body, (status, body)


def test_bad_paging_values_are_clear_400s():
    for q, words in [("?limit=0", "limit"), ("?limit=x", "limit"), ("?cursor=bogus", "cursor"),
                     ("?since=-1", "since"), ("?sort=job_id&cursor=12:ab", "cursor")]:
        status, body = listing("paged", q)
        assert status == 400 and words.encode() in body, (q, status, body)
    assert listing("nosuchproject", "?limit=5")[0] == 404


def test_scheduler_lists_are_paged_with_a_total():
    import urllib.request
    seen, url = [], f"{node.gateway}/completed_jobs?limit=4"
    while url:
        with urllib.request.urlopen(url, timeout=15) as r:
            assert int(r.headers["X-Total-Count"]) >= 23
            seen += list(json.loads(r.read()).keys())
            link = r.headers.get("Link")
        url = node.gateway + re.fullmatch(r"<(.*)>; rel=\"next\"", link).group(1) if link else None
    assert set(PAGED) <= set(seen) and len(seen) == len(set(seen)), seen
    status, raw = node.request("GET", "/completed_jobs?limit=0", base=node.gateway)
    assert status == 400, raw


def test_every_job_in_pages_and_foundations_list_shows_one():
    seen, url = [], "/api/v1/jobs?limit=6"
    while url:
        status, raw = node.request("GET", url)
        assert status == 200, raw
        page = json.loads(raw)
        seen += [j["job_id"] for j in page["jobs"]]
        url = f"/api/v1/jobs?limit=6&cursor={page['next_cursor']}" if page["next_cursor"] else None
    assert [j for j in seen if j in PAGED] == list(reversed(PAGED)), seen
    assert seen[0] == SCORED[-1] and page["total"] == len(seen), (seen, page)
    out = node.cli("list", "local", "--limit", "5", check=0).stdout
    lines = out.strip().splitlines()
    assert len(lines) == 1 + 5 + 1, out
    assert SCORED[-1] in lines[1] and f"(the newest 5 of {len(seen)} jobs" in lines[-1], out
    r = node.cli("list", "local", "--limit", "0", check=2)
    assert "--limit" in r.stderr, r.stderr


def test_the_queue_and_the_unfinished_jobs_come_in_bounded_pieces():
    import urllib.request
    slow = "import time\ntime.sleep(60)\n"
    running = [submit(node, slow, project="queue") for _ in range(4)]  # every slot
    for job_id in running:
        node.wait_for_status(job_id, ["running"], timeout=30)
    queued = [submit(node, slow, project="queue") for _ in range(5)]
    try:
        seen, url = [], f"{node.gateway}/queued_jobs?limit=2"
        while url:
            with urllib.request.urlopen(url, timeout=15) as r:
                assert r.headers["X-Total-Count"] == "5", dict(r.headers)
                page = json.loads(r.read())
                link = r.headers.get("Link")
            assert len(page) <= 2 and all(int(k) == v["position"] for k, v in page.items()), page
            seen += [page[k]["job_id"] for k in sorted(page, key=int)]
            url = node.gateway + re.fullmatch(r"<(.*)>; rel=\"next\"", link).group(1) if link else None
        assert seen == queued, (seen, queued)
        # The jobs not ended, whatever the history holds (what `stop --sweep` reads).
        status, raw = node.request("GET", "/api/v1/jobs?unfinished=true")
        assert status == 200, raw
        assert sorted(j["job_id"] for j in json.loads(raw)["jobs"]) == sorted(running + queued), raw
        # Unpaged, the list of every job is one capped page with its next.
        status, raw = node.request("GET", "/api/v1/jobs")
        whole = json.loads(raw)
        assert whole["jobs"][0]["job_id"] == queued[-1] and whole["total"] == len(whole["jobs"]), whole
        assert "next_cursor" in whole
    finally:
        node.request("DELETE", "/api/v1/queued_jobs")
        for job_id in running:
            node.request("DELETE", f"/running_jobs/{job_id}", base=node.gateway)
        for job_id in running:
            node.wait_for_status(job_id, ["failed", "cancelled", "completed"], timeout=30)


def index_entries(job_id):
    """The sorted indexes (listings, statuses, metrics...) that still hold a job."""
    return [key for key in redis_cli("KEYS", "atlas:index:*").split()
            if redis_cli("TYPE", key) == "zset" and redis_cli("ZSCORE", key, job_id) != ""]


def test_retention_keeps_the_newest_finished_jobs_and_removes_the_rest_everywhere():
    ids = run_jobs("keep3", 7, "import foundations\nfoundations.log_metric('acc', 0.5)\n")
    kept = ids[-3:]
    gone = ids[:-3]
    results = node.home  # every job directory is under the node's home here
    wait_until(lambda: listing("keep3")[1]["total"] == 3 if listing("keep3")[0] == 200 else False,
               30, "retention to keep 3 jobs of keep3")
    assert [j["job_id"] for j in listing("keep3")[1]["jobs"]] == list(reversed(kept))
    for job_id in gone:
        assert node.request("GET", f"/jobs/{job_id}", base=node.gateway)[0] == 404
        assert redis_cli("HEXISTS", "routing_map:job_id", job_id) == "0"
        assert redis_cli("KEYS", f"atlas:job:{job_id}*") == ""
        assert index_entries(job_id) == [], index_entries(job_id)
        leftovers = subprocess.run(["find", results, "-name", f"*{job_id}*"],
                                   capture_output=True, text=True).stdout.split()
        assert leftovers == [], leftovers
    for job_id in kept:
        assert node.job(job_id)["status"] == "completed"
        assert any(":metric:acc" in key for key in index_entries(job_id)), index_entries(job_id)
        # (the search above is not vacuous: a kept job's files are found)
        assert subprocess.run(["find", results, "-name", f"*{job_id}*"],
                              capture_output=True, text=True).stdout.split(), job_id
    # Another project's jobs are untouched.
    assert listing("paged")[1]["total"] == 23


def test_retention_by_age_and_delete_share_one_path():
    ids = run_jobs("brief", 2)
    wait_until(lambda: listing("brief")[0] == 404, 30, "jobs past max_age to be removed")
    assert "brief" not in [p["name"] for p in node.json("GET", "/api/v2beta/projects")[1]]
    for job_id in ids:
        assert node.request("GET", f"/jobs/{job_id}", base=node.gateway)[0] == 404
    # foundations delete: the same removal, the indexes included.
    job_id = PAGED[0]
    assert node.request("DELETE", f"/api/v2beta/projects/paged/job_listing/{job_id}")[0] in (200, 204)
    assert listing("paged")[1]["total"] == 22
    assert redis_cli("ZSCORE", "atlas:index:jobs:paged", job_id) == ""


def rebuilt_listings_are_whole():
    wait_until(lambda: redis_cli("GET", "atlas:index:built") == "2", 30, "the indexes to be rebuilt")
    status, page = listing("paged", "?limit=5")
    assert status == 200 and page["total"] == 22, page
    assert [j["job_id"] for j in page["jobs"]] == list(reversed(PAGED))[:5]
    # The metric and parameter indexes are rebuilt from the tracking data.
    seen, cursors = walk("scored", "?sort=-loss&limit=3")
    assert seen == scored_order(descending=True) and "@" not in "".join(cursors), (seen, cursors)
    status, raw = node.request("GET", "/completed_jobs?limit=1000", base=node.gateway)
    assert status == 200 and set(PAGED[1:]) <= set(json.loads(raw)), raw[:200]


def test_a_store_from_before_the_indexes_is_indexed_on_start():
    node.stop_server()
    # Such a store holds its ids in sets: every id, and each state's.
    every = redis_cli("ZRANGE", "atlas:index:all", "0", "-1").split()
    completed = redis_cli("ZRANGE", "atlas:index:list:completed_jobs", "0", "-1").split()
    assert set(PAGED[1:]) <= set(completed) and redis_cli("EXISTS", "atlas:jobs") == "0"
    redis_cli("SADD", "atlas:jobs", *every)
    redis_cli("SADD", "atlas:state:completed", *completed)
    for key in redis_cli("KEYS", "atlas:index:*").split():
        redis_cli("DEL", key)
    node.start()
    # Until they are built, listings read every record; then pages again.
    rebuilt_listings_are_whole()
    # Then the old sets are read no more, and go.
    assert redis_cli("EXISTS", "atlas:jobs", "atlas:state:completed") == "0"


def test_an_older_index_generation_is_rebuilt_from_the_every_job_index():
    node.stop_server()
    for key in redis_cli("KEYS", "atlas:index:*").split():
        if key != "atlas:index:all":
            redis_cli("DEL", key)
    redis_cli("SET", "atlas:index:built", "1")
    node.start()
    rebuilt_listings_are_whole()


try:
    harness.run_tests([
        test_pages_walk_every_job_once_newest_first,
        test_link_header_names_the_next_page,
        test_since_answers_unchanged_until_something_is_written,
        test_a_status_filter_pages_from_its_own_index,
        test_filtered_and_sorted_pages_use_offsets,
        test_a_metric_or_parameter_sort_pages_from_its_index,
        test_bad_paging_values_are_clear_400s,
        test_scheduler_lists_are_paged_with_a_total,
        test_every_job_in_pages_and_foundations_list_shows_one,
        test_the_queue_and_the_unfinished_jobs_come_in_bounded_pieces,
        test_retention_keeps_the_newest_finished_jobs_and_removes_the_rest_everywhere,
        test_retention_by_age_and_delete_share_one_path,
        test_a_store_from_before_the_indexes_is_indexed_on_start,
        test_an_older_index_generation_is_rebuilt_from_the_every_job_index,
    ])
finally:
    node.cleanup()
