// Atlas dashboard, live updates: /api/v1/events as server-sent events (loaded
// before app.js, whose globals it uses when called).
'use strict';

const FALLBACK_POLL_MS = 10000; // while the event stream is open
// The view shown refreshes at once (debounced) on an event it cares about, and
// polls every 10 s while the stream is open, every 2 s without it. In -p mode
// EventSource cannot send the bearer token, so there it is polling alone.
let liveOpen = false;
let onLiveEvent = null; // (kind, event) => void, set by the view shown
function startLive() {
  if (authMode || typeof EventSource === 'undefined') return;
  const source = new EventSource('/api/v1/events?follow=1');
  source.onopen = () => { liveOpen = true; };
  source.onerror = () => { liveOpen = false; }; // it reconnects by itself, resuming after the last id
  for (const kind of ['job', 'node']) {
    source.addEventListener(kind, ev => {
      let e = null;
      try { e = JSON.parse(ev.data); } catch (err) { return; }
      if (onLiveEvent) onLiveEvent(kind, e);
    });
  }
}
// Runs `fn` now, then on every event `wanted(kind, event)` accepts (200 ms
// debounce) and on the fallback period.
// A pending debounce that outlives its view only costs one request: every
// view ignores answers once left (viewSeq).
function live(fn, wanted, openPollMs = FALLBACK_POLL_MS) {
  let lastRun = 0, debounce = null;
  const run = () => { lastRun = Date.now(); fn(); };
  const tick = () => { if (Date.now() - lastRun >= (liveOpen ? openPollMs : POLL_MS)) run(); };
  onLiveEvent = (kind, e) => {
    if (!wanted(kind, e)) return;
    clearTimeout(debounce);
    debounce = setTimeout(run, 200);
  };
  run();
  timers.push(setInterval(tick, 250));
}
