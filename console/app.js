// tickd's web console: a single page over the REST API, no framework, no build step.
//
// Rules this file keeps: text from the server goes into the page as text nodes only (job ids,
// names and script output are user data: never innerHTML); every request goes to this origin
// (the Content-Security-Policy forbids the rest); buttons the user's role would be refused are
// not drawn (GET P/me says who is logged in).
"use strict";

(() => {
  const PREFIX = meta("tickd-prefix");
  const ROLES = ["viewer", "operator", "admin"];
  const STATUSES = ["running", "queued", "succeeded", "failed", "timed_out", "cancelled", "interrupted", "missed", "skipped"];
  const REFRESH_MS = 5000;
  const PREVIEW_DEBOUNCE_MS = 350;
  const LAZY_DESCRIPTIONS = 60;

  let me = { name: null, role: "viewer", scheduler_state: "running" };
  let screen = null; // { stop() } of the screen shown
  let scripts = null; // cached names for the datalist

  function meta(name) {
    const tag = document.querySelector(`meta[name="${name}"]`);
    return tag ? tag.getAttribute("content") : "";
  }

  // ---- DOM helpers: elements and text nodes, never HTML strings ----------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "class") el.className = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (value === true) el.setAttribute(key, "");
      else el.setAttribute(key, String(value));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  // Whether `el` last showed this same `data`; remembers it. A refresh that brings nothing new
  // leaves the page alone, so keyboard focus and selections survive it.
  const shown = new WeakMap();
  function same(el, data) {
    const key = JSON.stringify(data);
    if (shown.get(el) === key) return true;
    shown.set(el, key);
    return false;
  }

  // Replaces what `el` holds (false and null children are left out).
  const fill = (el, ...children) => append(clear(el), children);

  const can = (role) => ROLES.indexOf(me.role) >= ROLES.indexOf(role);

  // ---- The API --------------------------------------------------------------------------

  // Absolute URLs from location.origin: a page opened as http://user:pass@host/ must not
  // resolve requests against an address holding credentials.
  const url = (path) => location.origin + PREFIX + path;
  const enc = encodeURIComponent;

  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const answer = await fetch(url(path), init);
    const text = await answer.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
    if (!answer.ok) {
      const message = data && data.error_message ? data.error_message : `${answer.status} ${answer.statusText}`;
      const error = new Error(message);
      error.status = answer.status;
      throw error;
    }
    return data;
  }

  // ---- Messages ---------------------------------------------------------------------------

  let flashTimer = null;
  function flash(text, kind) {
    const box = document.getElementById("flash");
    fill(box, document.createTextNode(text));
    box.className = "flash " + (kind || "info");
    box.hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 8000 : 3500);
  }

  // Runs an action from a button: disabled meanwhile, errors shown.
  async function act(button, work, done) {
    if (button) button.disabled = true;
    try {
      const result = await work();
      if (done) flash(done, "ok");
      return result;
    } catch (error) {
      flash(error.message, "error");
      return undefined;
    } finally {
      if (button && button.isConnected) button.disabled = false;
    }
  }

  // A modal confirmation; resolves true when the user confirms.
  function confirmDialog(title, text, yes) {
    return new Promise((resolve) => {
      const dialog = h("dialog", { class: "confirm", "aria-labelledby": "confirm-title" });
      const close = (answer) => { dialog.close(); dialog.remove(); resolve(answer); };
      append(dialog, [
        h("h2", { id: "confirm-title" }, title),
        h("p", null, text),
        h("div", { class: "actions" },
          h("button", { type: "button", class: "ghost", onclick: () => close(false) }, "Cancel"),
          h("button", { type: "button", class: "danger", "data-confirm": "yes", onclick: () => close(true) }, yes)),
      ]);
      dialog.addEventListener("cancel", (event) => { event.preventDefault(); close(false); });
      document.body.append(dialog);
      dialog.showModal();
    });
  }

  // ---- Time -------------------------------------------------------------------------------

  const pad = (n) => String(n).padStart(2, "0");

  // "2030-01-02T09:30:00.123+08:00" as the job's zone shows it: "2030-01-02 09:30:00 +08:00".
  function zoneTime(iso) {
    if (!iso) return "—";
    const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})?$/.exec(iso);
    if (!m) return iso;
    return `${m[1]} ${m[2]} ${m[3] === "Z" || m[3] === "+00:00" ? "UTC" : m[3] || ""}`.trim();
  }

  function localTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function span(ms) {
    let s = Math.max(0, Math.round(ms / 1000));
    const d = Math.floor(s / 86400); s -= d * 86400;
    const hh = Math.floor(s / 3600); s -= hh * 3600;
    const mm = Math.floor(s / 60); s -= mm * 60;
    if (d) return `${d}d ${hh}h`;
    if (hh) return `${hh}h ${pad(mm)}m`;
    if (mm) return `${mm}m ${pad(s)}s`;
    return `${s}s`;
  }

  // An element the clock keeps current: "in 3m 05s", "4s ago", or an elapsed time.
  function ticking(iso, mode) {
    const el = h("span", { class: "tick", dataset: { at: String(Date.parse(iso)), mode } });
    tickOne(el);
    return el;
  }

  function tickOne(el) {
    const at = Number(el.dataset.at);
    if (!Number.isFinite(at)) { el.textContent = ""; return; }
    const diff = at - Date.now();
    if (el.dataset.mode === "elapsed") el.textContent = span(-diff);
    else el.textContent = diff >= 0 ? `in ${span(diff)}` : `${span(-diff)} ago`;
  }

  setInterval(() => document.querySelectorAll(".tick").forEach(tickOne), 1000);

  function when(iso) {
    if (!iso) return "—";
    return h("span", { class: "when", title: `${zoneTime(iso)} · your time ${localTime(iso)}` },
      localTime(iso), " ", h("span", { class: "muted" }, "(", ticking(iso, "relative"), ")"));
  }

  // ---- Small pieces -----------------------------------------------------------------------

  const badge = (status) => h("span", { class: `badge s-${status}` }, String(status).replace("_", " "));
  const jobLink = (id) => h("a", { href: `#/jobs/${enc(id)}`, class: "mono" }, id);
  const runLink = (id) => h("a", { href: `#/runs/${enc(id)}`, class: "mono", title: id }, id.slice(-12));
  const empty = (cols, text) => h("tr", null, h("td", { colspan: cols, class: "empty" }, text));

  function table(headers, rows, cls) {
    // Each cell names its column, for narrow screens where rows become blocks.
    for (const row of [rows].flat()) {
      if (!(row instanceof Element)) continue;
      [...row.children].forEach((td, i) => { if (headers[i] && !td.hasAttribute("colspan")) td.dataset.label = headers[i]; });
    }
    return h("div", { class: "table-wrap" },
      h("table", { class: cls || "" },
        h("thead", null, h("tr", null, headers.map((label) => h("th", { scope: "col" }, label)))),
        h("tbody", null, rows)));
  }

  function card(title, ...body) {
    return h("section", { class: "card" }, h("h2", null, title), ...body);
  }

  function triggerKind(job) {
    return job.trigger || "date";
  }

  // A trigger in words when the preview has not answered yet.
  function triggerBrief(job) {
    if (job.trigger === "cron") {
      return "cron " + ["second", "minute", "hour", "day", "month", "day_of_week", "week", "year"]
        .filter((k) => job[k] !== undefined).map((k) => `${k}=${job[k]}`).join(" ");
    }
    if (job.trigger === "interval") {
      return "every " + ["weeks", "days", "hours", "minutes", "seconds"]
        .filter((k) => job[k]).map((k) => `${job[k]} ${k}`).join(" ");
    }
    return `once at ${zoneTime(job.run_date)}`;
  }

  // ---- Header -----------------------------------------------------------------------------

  async function loadMe() {
    me = await api("GET", "/me");
    const who = document.getElementById("who");
    fill(who, h("span", { class: "user" }, me.name === null ? "no login" : me.name),
      " ", h("span", { class: `role r-${me.role}` }, me.role));
    showState(me.scheduler_state);
    document.querySelectorAll("[data-needs]").forEach((el) => { el.hidden = !can(el.dataset.needs); });
  }

  function showState(state) {
    me.scheduler_state = state;
    const el = document.getElementById("sched-state");
    el.className = `badge st-${state}`;
    el.textContent = `scheduler ${state}`;
  }

  async function refreshState() {
    try {
      const who = await api("GET", "/me");
      showState(who.scheduler_state);
    } catch (_) { /* shown by the screens */ }
  }

  function stateButtons(onChange) {
    const box = h("div", { class: "actions" });
    const state = me.scheduler_state;
    const button = (label, path, needs, cls) => can(needs) && h("button", {
      type: "button", class: cls || "", "data-action": path.slice(1),
      onclick: async (event) => {
        await act(event.currentTarget, () => api("POST", path), `Scheduler: ${label.toLowerCase()}`);
        await refreshState();
        onChange();
      },
    }, label);
    if (state === "running") append(box, [button("Pause", "/pause", "operator"), button("Shut down", "/shutdown", "admin", "danger")]);
    if (state === "paused") append(box, [button("Resume", "/resume", "operator", "primary"), button("Shut down", "/shutdown", "admin", "danger")]);
    if (state === "stopped") append(box, [button("Start", "/start", "admin", "primary")]);
    return box;
  }

  // ---- Screens ----------------------------------------------------------------------------

  // A screen: draws into `main`, refreshes every few seconds while shown, stops when left.
  function periodic(draw) {
    let stopped = false;
    let timer = null;
    const run = async () => {
      if (stopped) return;
      try { await draw(); } catch (error) { flash(error.message, "error"); }
      if (!stopped) timer = setTimeout(run, REFRESH_MS);
    };
    run();
    return { stop() { stopped = true; clearTimeout(timer); }, now: () => { clearTimeout(timer); run(); } };
  }

  function page(title, ...body) {
    const main = clear(document.getElementById("main"));
    append(main, [h("h1", null, title), ...body]);
    document.title = `${title} · tickd`;
    return main;
  }

  // Overview: what runs now, what fires next, what failed lately, the scheduler.
  function overview() {
    const running = h("div"), due = h("div"), failures = h("div"), sched = h("div");
    page("Overview", h("div", { class: "grid" },
      card("Scheduler", sched), card("Running now", running),
      card("Due in the next 24 hours", due), card("Recent failures", failures)));
    const view = periodic(async () => {
      const [runs, jobs, failed] = await Promise.all([
        api("GET", "/runs?status=running&limit=50"),
        api("GET", "/jobs"),
        api("GET", "/runs?status=failed,timed_out&limit=10"),
      ]);
      await refreshState();
      if (!same(sched, [me.scheduler_state, jobs.map((j) => j.next_run_time === null)])) fill(sched, h("p", { class: "big" }, h("span", { class: `badge st-${me.scheduler_state}` }, me.scheduler_state)),
        h("p", { class: "muted" }, `${jobs.length} job${jobs.length === 1 ? "" : "s"}, ${jobs.filter((j) => j.next_run_time === null).length} paused`),
        stateButtons(() => view.now()));
      if (!same(running, runs)) fill(running, table(["Job", "Run", "Started", "Elapsed", ""], runs.length ? runs.map((run) => h("tr", null,
        h("td", null, jobLink(run.job_id)), h("td", null, runLink(run.id)),
        h("td", null, localTime(run.started_at)),
        h("td", { class: "num" }, run.started_at ? ticking(run.started_at, "elapsed") : "—"),
        h("td", { class: "row-actions" }, can("operator") && h("button", {
          type: "button", class: "small danger", "data-action": "cancel",
          onclick: (event) => act(event.currentTarget, () => api("POST", `/runs/${enc(run.id)}/cancel`), "Run cancelled").then(() => view.now()),
        }, "Cancel")))) : empty(5, "Nothing is running.")));
      const horizon = Date.now() + 24 * 3600 * 1000;
      const next = jobs.filter((job) => job.next_run_time && Date.parse(job.next_run_time) <= horizon).slice(0, 15);
      if (!same(due, next)) fill(due, table(["Job", "Next run (job's zone)", "In"], next.length ? next.map((job) => h("tr", null,
        h("td", null, jobLink(job.id)), h("td", { class: "mono" }, zoneTime(job.next_run_time)),
        h("td", { class: "num" }, ticking(job.next_run_time, "relative")))) : empty(3, "No job fires in the next 24 hours.")));
      if (!same(failures, failed)) fill(failures, table(["Job", "Run", "Status", "When", "Reason"], failed.length ? failed.map((run) => h("tr", null,
        h("td", null, jobLink(run.job_id)), h("td", null, runLink(run.id)), h("td", null, badge(run.status)),
        h("td", null, localTime(run.finished_at || run.started_at)),
        h("td", { class: "reason" }, run.reason || (run.exit_code !== null ? `exit code ${run.exit_code}` : "")))) : empty(5, "No failures lately.")));
    });
    return view;
  }

  // Jobs: a table with search, filters, sorting and per-row actions.
  const descriptions = new Map(); // id -> [fingerprint, description]

  function jobs() {
    const filters = { q: "", state: "all", kind: "all", sort: "next" };
    const body = h("div");
    const search = h("input", { type: "search", placeholder: "Search id or name", "aria-label": "Search jobs", id: "job-search" });
    const select = (name, label, options) => h("label", { class: "inline" }, label, " ",
      h("select", { name, onchange: (event) => { filters[name] = event.target.value; draw(); } },
        options.map(([value, text]) => h("option", { value }, text))));
    search.addEventListener("input", () => { filters.q = search.value.trim().toLowerCase(); draw(); });
    page("Jobs", h("div", { class: "toolbar" }, search,
      select("state", "State", [["all", "All"], ["scheduled", "Scheduled"], ["paused", "Paused"]]),
      select("kind", "Trigger", [["all", "All"], ["cron", "Cron"], ["interval", "Interval"], ["date", "Date"]]),
      select("sort", "Sort", [["next", "Next run"], ["id", "Id"], ["name", "Name"]]),
      can("operator") && h("a", { href: "#/new", class: "button primary" }, "New job")), body);

    let all = [], last = new Map(), active = new Set();
    const draw = () => {
      let shown = all.filter((job) => {
        if (filters.q && !job.id.toLowerCase().includes(filters.q) && !String(job.name).toLowerCase().includes(filters.q)) return false;
        if (filters.state === "paused" && job.next_run_time !== null) return false;
        if (filters.state === "scheduled" && job.next_run_time === null) return false;
        if (filters.kind !== "all" && triggerKind(job) !== filters.kind) return false;
        return true;
      });
      if (filters.sort === "id") shown.sort((a, b) => a.id.localeCompare(b.id));
      if (filters.sort === "name") shown.sort((a, b) => String(a.name).localeCompare(String(b.name)));
      const rows = shown.map((job) => jobRow(job, last.get(job.id), active.has(job.id), () => view.now()));
      fill(body, table(["Job", "Trigger", "Next run", "Last run", ""], rows.length ? rows : empty(5, all.length ? "No job matches." : "No jobs yet."), "jobs"),
        h("p", { class: "muted small" }, `${shown.length} of ${all.length} jobs`));
      describe(shown.slice(0, LAZY_DESCRIPTIONS));
    };
    const view = periodic(async () => {
      const [list, recent, running] = await Promise.all([
        api("GET", "/jobs"), api("GET", "/runs?limit=200"), api("GET", "/runs?status=running&limit=200"),
      ]);
      all = list;
      last = new Map();
      for (const run of recent) if (!last.has(run.job_id)) last.set(run.job_id, run);
      active = new Set(running.map((run) => run.job_id));
      if (!same(body, [all, [...last.values()].map((r) => [r.id, r.status]), [...active]])) draw();
    });
    return view;
  }

  // Fetches the trigger's words for these jobs (one preview each, a few at once), once per
  // version of the job.
  async function describe(list) {
    const wanted = list.filter((job) => {
      const known = descriptions.get(job.id);
      return !known || known[0] !== fingerprint(job);
    });
    for (let i = 0; i < wanted.length; i += 4) {
      await Promise.all(wanted.slice(i, i + 4).map(async (job) => {
        try {
          const preview = await api("GET", `/jobs/${enc(job.id)}/preview?count=1`);
          descriptions.set(job.id, [fingerprint(job), preview.description, preview.timezone]);
          document.querySelectorAll(`[data-describe]`).forEach((el) => {
            if (el.dataset.describe === job.id) el.textContent = preview.description;
          });
        } catch (_) { descriptions.set(job.id, [fingerprint(job), triggerBrief(job)]); }
      }));
    }
  }

  function fingerprint(job) {
    const copy = Object.assign({}, job);
    delete copy.next_run_time;
    return JSON.stringify(copy);
  }

  function jobRow(job, lastRun, isRunning, changed) {
    const known = descriptions.get(job.id);
    const paused = job.next_run_time === null;
    const post = (path, done) => (event) => act(event.currentTarget, () => api("POST", `/jobs/${enc(job.id)}${path}`), done).then(changed);
    return h("tr", { dataset: { job: job.id } },
      h("td", null, jobLink(job.id), job.name !== job.id ? h("div", { class: "muted small" }, job.name) : null,
        isRunning ? h("span", { class: "badge s-running pill" }, "running") : null),
      h("td", { class: "trigger" }, h("span", { class: "kind" }, triggerKind(job)), " ",
        h("span", { dataset: { describe: job.id } }, known ? known[1] : triggerBrief(job))),
      h("td", null, paused ? badge("paused") : h("div", null,
        h("div", { class: "mono" }, zoneTime(job.next_run_time)),
        h("div", { class: "muted small" }, "yours ", localTime(job.next_run_time), " · ", ticking(job.next_run_time, "relative")))),
      h("td", null, lastRun ? h("a", { href: `#/runs/${enc(lastRun.id)}` }, badge(lastRun.status)) : h("span", { class: "muted" }, "never")),
      h("td", { class: "row-actions" }, can("operator") && [
        paused
          ? h("button", { type: "button", class: "small", "data-action": "resume", onclick: post("/resume", `Resumed ${job.id}`) }, "Resume")
          : h("button", { type: "button", class: "small", "data-action": "pause", onclick: post("/pause", `Paused ${job.id}`) }, "Pause"),
        h("button", { type: "button", class: "small", "data-action": "run", onclick: post("/run", `Started ${job.id}`) }, "Run now"),
        h("button", {
          type: "button", class: "small danger", "data-action": "delete",
          onclick: async (event) => {
            const button = event.currentTarget;
            if (!(await confirmDialog("Delete this job?", `Job “${job.id}” will be removed; its runs stay readable.`, "Delete"))) return;
            await act(button, () => api("DELETE", `/jobs/${enc(job.id)}`), `Deleted ${job.id}`);
            changed();
          },
        }, "Delete"),
      ]));
  }

  // The job form, for New job (POST P/jobs) and a job's edit (PATCH P/jobs/<id>): it builds a
  // body as the user types and previews it (debounced POST P/preview).
  const TRIGGER_FIELDS = {
    cron: ["second", "minute", "hour", "day", "month", "day_of_week", "week", "year", "start_date", "end_date"],
    interval: ["weeks", "days", "hours", "minutes", "seconds", "start_date", "end_date"],
    date: ["run_date"],
  };
  const NUMERIC = new Set(["weeks", "days", "hours", "minutes", "seconds"]);

  function jobForm(job, onSaved) {
    const editing = job !== null;
    const initial = job || { func: "task:run_script", trigger: "cron", args: [], kwargs: {} };
    const field = (name, label, input, hint) => h("label", { class: `field f-${name}` },
      h("span", { class: "label" }, label), input, hint ? h("span", { class: "hint" }, hint) : null);
    const text = (name, value, attrs) => h("input", Object.assign({ name, type: "text", value: value === undefined || value === null ? "" : value, autocomplete: "off" }, attrs || {}));

    const form = h("form", { class: "job-form", novalidate: true });
    const idInput = text("id", editing ? initial.id : "", { required: true, readonly: editing });
    const datalist = h("datalist", { id: "script-names" });
    const scriptInput = text("script", initial.args && initial.args[0], { list: "script-names", placeholder: "report.py" });
    const restArgs = text("args", JSON.stringify((initial.args || []).slice(1)), { class: "mono" });
    const kwargs = h("textarea", { name: "kwargs", rows: 2, class: "mono" }, JSON.stringify(initial.kwargs || {}));
    const func = h("select", { name: "func" },
      ["task:run_script", "task:success"].map((f) => h("option", { value: f, selected: initial.func === f }, f)));
    const kind = h("select", { name: "trigger" },
      ["cron", "interval", "date"].map((k) => h("option", { value: k, selected: triggerKind(initial) === k }, k)));
    const timezone = text("timezone", "", { placeholder: "scheduler's zone" });
    const triggerBox = h("div", { class: "trigger-fields" });
    const grace = text("misfire_grace_time", initial.misfire_grace_time === null ? "" : initial.misfire_grace_time, { inputmode: "numeric", placeholder: editing ? "no limit" : "default" });
    const instances = text("max_instances", initial.max_instances, { inputmode: "numeric", placeholder: "default" });
    const timeout = text("timeout", initial.timeout, { inputmode: "numeric", placeholder: "none" });
    const retries = text("retries", initial.retry ? initial.retry.limit : "", { inputmode: "numeric", placeholder: "none" });
    const retryDelay = text("retry_delay", initial.retry ? initial.retry.delay : "", { inputmode: "numeric", placeholder: "10" });
    const overlap = h("select", { name: "overlap" },
      ["skip", "queue", "replace", "allow"].map((o) => h("option", { value: o, selected: (initial.overlap || "skip") === o }, o)));
    const coalesce = h("input", { type: "checkbox", name: "coalesce", checked: true });
    let coalesceTouched = false;
    coalesce.addEventListener("change", () => { coalesceTouched = true; });
    const name = text("name", editing ? initial.name : "", { placeholder: "the id" });
    const preview = h("div", { class: "preview", "aria-live": "polite" }, h("p", { class: "muted" }, "The next fire times show here."));
    const problem = h("p", { class: "problem", role: "alert", hidden: true });
    const save = h("button", { type: "submit", class: "primary" }, editing ? "Save changes" : "Create job");

    const triggerInputs = {};
    function drawTrigger() {
      clear(triggerBox);
      for (const key of TRIGGER_FIELDS[kind.value]) {
        const value = triggerInputs[key] ? triggerInputs[key].value : initial.trigger === kind.value || (!initial.trigger && kind.value === "date") ? initial[key] : undefined;
        const input = text(key, value, { placeholder: key.endsWith("date") ? "YYYY-MM-DD HH:MM:SS" : NUMERIC.has(key) ? "0" : "*" , inputmode: NUMERIC.has(key) ? "decimal" : null});
        input.addEventListener("input", changed);
        triggerInputs[key] = input;
        triggerBox.append(field(key, key.replace(/_/g, " "), input));
      }
    }

    function body(forPatch) {
      const out = {};
      if (!forPatch) out.id = idInput.value.trim();
      if (name.value.trim()) out.name = name.value.trim();
      out.func = func.value;
      let rest = [];
      try { rest = JSON.parse(restArgs.value || "[]"); } catch (_) { throw new Error("Arguments must be a JSON array, e.g. [\"--full\", 3]"); }
      if (!Array.isArray(rest)) throw new Error("Arguments must be a JSON array, e.g. [\"--full\", 3]");
      out.args = scriptInput.value.trim() ? [scriptInput.value.trim(), ...rest] : rest;
      try { out.kwargs = JSON.parse(kwargs.value || "{}"); } catch (_) { throw new Error("Keyword arguments must be a JSON object, e.g. {\"mode\": \"full\"}"); }
      const number = (input, label, allowEmpty) => {
        const v = input.value.trim();
        if (v === "") return allowEmpty;
        if (!/^\d+(\.\d+)?$/.test(v)) throw new Error(`${label} must be a number`);
        return Number(v);
      };
      // Empty: a new job gets [job_defaults]; an edited one, no limit.
      const mg = number(grace, "Misfire grace time", forPatch ? null : undefined);
      if (mg !== undefined) out.misfire_grace_time = mg;
      const mi = number(instances, "Max instances", undefined);
      if (mi !== undefined) out.max_instances = mi;
      const to = number(timeout, "Timeout", forPatch ? null : undefined);
      if (to !== undefined) out.timeout = to;
      // A retry keeps what the form does not show (backoff, max_delay, exit codes).
      const limit = number(retries, "Retries", forPatch ? null : undefined);
      if (limit === null || limit === 0) { if (forPatch) out.retry = null; }
      else if (limit !== undefined) {
        out.retry = { ...(initial.retry || {}), limit };
        const delay = number(retryDelay, "Retry delay", undefined);
        if (delay !== undefined) out.retry.delay = delay;
        if (out.retry.max_delay !== undefined && out.retry.max_delay < (out.retry.delay || 0)) delete out.retry.max_delay;
      }
      const ov = overlap.value;
      if (forPatch && ov !== (initial.overlap || "skip")) {
        out.overlap = ov;
        if (ov !== "queue" && initial.queue_limit) out.queue_limit = null;
      } else if (!forPatch && ov !== "skip") out.overlap = ov;
      // The job object does not show `coalesce`: it is sent only when changed (a new job
      // otherwise gets [job_defaults]).
      if (coalesceTouched) out.coalesce = coalesce.checked;
      out.trigger = kind.value;
      for (const key of TRIGGER_FIELDS[kind.value]) {
        const v = triggerInputs[key] ? triggerInputs[key].value.trim() : "";
        if (v === "") continue;
        out[key] = NUMERIC.has(key) && /^\d+(\.\d+)?$/.test(v) ? Number(v) : v;
      }
      if (timezone.value.trim()) out.timezone = timezone.value.trim();
      return out;
    }

    const triggerPart = (b) => JSON.stringify([b.trigger, b.timezone, ...TRIGGER_FIELDS[b.trigger].map((k) => b[k])]);
    let initialTrigger = null;

    let timer = null, asked = 0;
    function changed() {
      clearTimeout(timer);
      timer = setTimeout(runPreview, PREVIEW_DEBOUNCE_MS);
    }
    async function runPreview() {
      const mine = ++asked;
      let spec;
      try {
        spec = body(false);
        if (!spec.id) spec.id = "preview";
      } catch (error) { showProblem(error.message); return; }
      try {
        const answer = await api("POST", "/preview?count=5", spec);
        if (mine !== asked) return;
        showProblem(null);
        fill(preview, h("p", { class: "description" }, answer.description),
          fireTimes(answer.fire_times, answer.jitter));
      } catch (error) {
        if (mine !== asked) return;
        showProblem(error.message);
      }
    }
    function showProblem(message) {
      problem.hidden = !message;
      problem.textContent = message || "";
      if (message) fill(preview, h("p", { class: "problem", id: "preview-problem" }, message));
    }

    form.addEventListener("input", (event) => { if (!triggerBox.contains(event.target)) changed(); });
    kind.addEventListener("change", () => { drawTrigger(); changed(); });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      let spec;
      try { spec = body(editing); } catch (error) { showProblem(error.message); return; }
      if (!editing && !spec.id) { showProblem("The job needs an id."); idInput.focus(); return; }
      if (editing && initialTrigger !== null && triggerPart(spec) === initialTrigger) {
        // The schedule is unchanged: keep it (a trigger in a PATCH reschedules from now).
        delete spec.trigger; delete spec.timezone;
        for (const key of TRIGGER_FIELDS[kind.value]) delete spec[key];
      }
      const saved = await act(save, () => editing ? api("PATCH", `/jobs/${enc(initial.id)}`, spec) : api("POST", "/jobs", spec),
        editing ? "Job saved" : "Job created");
      if (saved) onSaved(saved);
    });

    drawTrigger();
    append(form, [
      h("fieldset", null, h("legend", null, "Job"),
        h("div", { class: "row" }, field("id", "Id", idInput, editing ? "cannot change" : null), field("name", "Name", name)),
        h("div", { class: "row" }, field("func", "Task", func), field("script", "Script", scriptInput, "in the workspace")),
        h("div", { class: "row" }, field("args", "More arguments (JSON array)", restArgs), field("kwargs", "Keyword arguments (JSON object)", kwargs))),
      h("fieldset", null, h("legend", null, "Schedule"),
        h("div", { class: "row" }, field("trigger", "Trigger", kind), field("timezone", "Time zone", timezone)),
        triggerBox),
      h("fieldset", null, h("legend", null, "Options"),
        h("div", { class: "row" }, field("misfire_grace_time", "Misfire grace (s)", grace, editing ? "empty: no limit" : "empty: the configured default"),
          field("max_instances", "Max instances", instances), field("timeout", "Timeout (s)", timeout)),
        h("div", { class: "row" }, field("retries", "Retries", retries, "failed or timed-out runs, tried again"),
          field("retry_delay", "Retry delay (s)", retryDelay, "doubles each time"), field("overlap", "When still running", overlap)),
        h("label", { class: "check" }, coalesce, " Coalesce missed fire times into one run")),
      problem,
      h("div", { class: "actions" }, save),
    ]);
    const wrap = h("div", { class: "form-grid" }, h("div", null, form, datalist), card("Preview", preview));

    loadScripts().then((names) => append(datalist, names.map((n) => h("option", { value: n }))));
    if (editing) {
      api("GET", `/jobs/${enc(initial.id)}/preview?count=1`).then((p) => {
        if (p.timezone) timezone.value = p.timezone;
        try { initialTrigger = triggerPart(body(true)); } catch (_) { initialTrigger = null; }
        changed();
      }).catch(() => changed());
    } else {
      changed();
    }
    return wrap;
  }

  async function loadScripts() {
    if (scripts === null) {
      try { scripts = (await api("GET", "/scripts")).scripts; } catch (_) { scripts = []; }
    }
    return scripts;
  }

  function fireTimes(times, jitter) {
    if (!times.length) return h("p", { class: "muted" }, "No future fire time.");
    return h("ol", { class: "fire-times" }, times.map((t) => h("li", null,
      h("span", { class: "mono" }, zoneTime(t.time)),
      h("span", { class: "muted small" }, " yours ", localTime(t.utc), " · ", ticking(t.utc, "relative")),
      t.dst ? h("span", { class: `dst dst-${t.dst}`, title: t.dst === "moved" ? "this wall time does not exist (clocks go forward): it runs after the jump" : "this wall time happens twice (clocks go back)" }, t.dst === "moved" ? "DST: moved" : "DST: repeated") : null,
      jitter ? h("span", { class: "muted small" }, ` ± ${jitter} s`) : null)));
  }

  function newJob() {
    page("New job", jobForm(null, (job) => { location.hash = `#/jobs/${enc(job.id)}`; }));
    return { stop() {} };
  }

  // A job: its settings, next fire times, runs (filtered, paged) and its edit form.
  function jobScreen(id) {
    const settings = h("div"), next = h("div"), runsBox = h("div"), editBox = h("div"), actions = h("div", { class: "actions" });
    const main = page(id);
    main.querySelector("h1").classList.add("mono");
    append(main, [actions, h("div", { class: "grid" }, card("Settings", settings), card("Next 10 fire times", next)),
      card("Runs", runsBox), can("operator") ? card("Edit", editBox) : null]);

    const filters = { status: "", since: "", until: "" };
    const pages = [null]; // `before` of each page shown
    const runFilters = h("div", { class: "toolbar" },
      h("label", { class: "inline" }, "Status ", h("select", { name: "run-status", onchange: (e) => { filters.status = e.target.value; pages.length = 1; loadRuns(); } },
        h("option", { value: "" }, "All"), STATUSES.map((s) => h("option", { value: s }, s.replace("_", " "))))),
      h("label", { class: "inline" }, "From ", h("input", { type: "datetime-local", name: "since", onchange: (e) => { filters.since = e.target.value; pages.length = 1; loadRuns(); } })),
      h("label", { class: "inline" }, "To ", h("input", { type: "datetime-local", name: "until", onchange: (e) => { filters.until = e.target.value; pages.length = 1; loadRuns(); } })));
    const runList = h("div");
    append(runsBox, [runFilters, runList]);

    async function loadRuns() {
      const q = [`job=${enc(id)}`, "limit=20"];
      if (filters.status) q.push(`status=${filters.status}`);
      if (filters.since) q.push(`since=${enc(new Date(filters.since).toISOString())}`);
      if (filters.until) q.push(`until=${enc(new Date(filters.until).toISOString())}`);
      const before = pages[pages.length - 1];
      if (before) q.push(`before=${enc(before)}`);
      try {
        const runs = await api("GET", `/runs?${q.join("&")}`);
        if (same(runList, [q, runs])) return;
        fill(runList, table(["Run", "Status", "Cause", "Scheduled for", "Started", "Finished", "Exit"], runs.length ? runs.map((run) => h("tr", null,
          h("td", null, runLink(run.id)), h("td", null, badge(run.status)), h("td", null, run.cause),
          h("td", { class: "mono" }, zoneTime(run.scheduled_run_time)), h("td", null, localTime(run.started_at)),
          h("td", null, localTime(run.finished_at)), h("td", { class: "num" }, run.exit_code === null ? "—" : run.exit_code))) : empty(7, "No runs.")),
        h("div", { class: "pager" },
          h("button", { type: "button", class: "small", disabled: pages.length === 1, onclick: () => { pages.pop(); loadRuns(); } }, "Newer"),
          h("button", { type: "button", class: "small", disabled: runs.length < 20, onclick: () => { pages.push(runs[runs.length - 1].id); loadRuns(); } }, "Older")));
      } catch (error) { flash(error.message, "error"); }
    }

    let formShown = false;
    const view = periodic(async () => {
      let job;
      try { job = await api("GET", `/jobs/${enc(id)}`); } catch (error) {
        if (error.status === 404) { fill(settings, h("p", { class: "muted" }, "This job does not exist (any more).")); clear(actions); return; }
        throw error;
      }
      const paused = job.next_run_time === null;
      const post = (path, done) => (event) => act(event.currentTarget, () => api("POST", `/jobs/${enc(id)}${path}`), done).then(() => view.now());
      if (!same(actions, paused) && can("operator")) fill(actions, [
        paused ? h("button", { type: "button", "data-action": "resume", class: "primary", onclick: post("/resume", "Resumed") }, "Resume")
          : h("button", { type: "button", "data-action": "pause", onclick: post("/pause", "Paused") }, "Pause"),
        h("button", { type: "button", "data-action": "run", onclick: post("/run", "Started") }, "Run now"),
        h("button", { type: "button", class: "danger", "data-action": "delete", onclick: async (event) => {
          const button = event.currentTarget;
          if (!(await confirmDialog("Delete this job?", `Job “${id}” will be removed; its runs stay readable.`, "Delete"))) return;
          if (await act(button, () => api("DELETE", `/jobs/${enc(id)}`), `Deleted ${id}`) !== undefined) location.hash = "#/jobs";
        } }, "Delete"),
      ]);
      const rows = [["Name", job.name], ["State", paused ? badge("paused") : badge("scheduled")], ["Task", job.func],
        ["Arguments", JSON.stringify(job.args)], ["Keyword arguments", JSON.stringify(job.kwargs)],
        ["Trigger", triggerBrief(job)], ["Next run", paused ? "—" : when(job.next_run_time)],
        ["Misfire grace", job.misfire_grace_time === null ? "no limit" : `${job.misfire_grace_time} s`],
        ["Max instances", job.max_instances], ["Timeout", job.timeout ? `${job.timeout} s` : "none"],
        ["Retries", job.retry ? `${job.retry.limit}, after ${job.retry.delay} s ×${job.retry.backoff}` : "none"],
        ["When still running", job.overlap || "skip"]];
      if (!same(settings, job)) fill(settings, h("dl", { class: "props" }, rows.map(([k, v]) => [h("dt", null, k), h("dd", null, v === undefined ? "—" : v)])));
      try {
        const p = await api("GET", `/jobs/${enc(id)}/preview?count=10`);
        if (!same(next, p)) fill(next, h("p", { class: "description" }, p.description), fireTimes(p.fire_times, p.jitter));
      } catch (error) { fill(next, h("p", { class: "muted" }, error.message)); }
      await loadRuns();
      if (!formShown && can("operator")) {
        formShown = true;
        editBox.append(jobForm(job, () => view.now()));
      }
    });
    return view;
  }

  // A run: its record, its output live (Server-Sent Events), download, cancel.
  function runScreen(id) {
    const facts = h("div"), actions = h("div", { class: "actions" });
    const out = h("pre", { class: "output", id: "stdout", "aria-label": "Standard output" });
    const err = h("pre", { class: "output err", id: "stderr", "aria-label": "Standard error" });
    const note = h("p", { class: "muted small", id: "stream-note" });
    const main = page("Run");
    append(main, [actions, card("Details", facts),
      h("div", { class: "grid outputs" }, card("Standard output", out), card("Standard error", err)), note]);
    const text = { stdout: "", stderr: "" };
    const sgr = { stdout: newSgr(), stderr: newSgr() };
    let run = null, source = null, stopped = false;

    async function load() {
      run = await api("GET", `/runs/${enc(id)}`);
      main.querySelector("h1").textContent = `Run of ${run.job_id}`;
      const rows = [["Status", badge(run.status)], ["Job", jobLink(run.job_id)], ["Run id", h("span", { class: "mono" }, run.id)],
        ["Cause", run.cause], ["Scheduled for", zoneTime(run.scheduled_run_time)], ["Started", localTime(run.started_at)],
        ["Finished", run.finished_at ? localTime(run.finished_at) : run.started_at ? h("span", null, "running for ", ticking(run.started_at, "elapsed")) : "—"],
        ["Exit code", run.exit_code === null ? "—" : String(run.exit_code)], ["Reason", run.reason || "—"], ["Node", run.node || "—"]];
      if (run.attempt > 1) rows.splice(4, 0, ["Attempt", h("span", null, `${run.attempt}, retrying `, runLink(run.retry_of))]);
      if (run.due_at) rows.splice(5, 0, ["Due", localTime(run.due_at)]);
      fill(facts, h("dl", { class: "props", id: "run-facts", dataset: { status: run.status } }, rows.map(([k, v]) => [h("dt", null, k), h("dd", null, v)])));
      fill(actions, 
        h("button", { type: "button", "data-action": "download", onclick: download }, "Download output"),
        (run.status === "running" || run.status === "queued") && can("operator") ? h("button", { type: "button", class: "danger", "data-action": "cancel",
          onclick: (event) => act(event.currentTarget, () => api("POST", `/runs/${enc(id)}/cancel`), "Run cancelled").then(load) }, "Cancel run") : null);
    }

    function download() {
      const blob = new Blob([`# stdout\n${text.stdout}\n# stderr\n${text.stderr}`], { type: "text/plain" });
      const link = h("a", { href: URL.createObjectURL(blob), download: `run-${id}.txt` });
      document.body.append(link);
      link.click();
      setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
    }

    function follow() {
      source = new EventSource(url(`/runs/${enc(id)}/output?follow=true`));
      const add = (stream, pre) => (event) => {
        text[stream] += event.data;
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
        renderAnsi(pre, event.data, sgr[stream]);
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      };
      source.addEventListener("stdout", add("stdout", out));
      source.addEventListener("stderr", add("stderr", err));
      source.addEventListener("truncated", (event) => { note.textContent = `Earlier ${JSON.parse(event.data).stream} was not kept; this is its tail.`; });
      source.addEventListener("dropped", (event) => { const d = JSON.parse(event.data); note.textContent = `${d.bytes} bytes were skipped: the page read too slowly.`; });
      for (const name of ["remote", "refused", "gone"]) source.addEventListener(name, (event) => { note.textContent = JSON.parse(event.data).message; });
      source.addEventListener("end", () => { source.close(); if (!stopped) load().catch((e) => flash(e.message, "error")); });
      source.onerror = () => { if (source.readyState === EventSource.CLOSED && !stopped) note.textContent = "The live output stopped; reload to see the rest."; };
    }

    load().then(follow).catch((error) => {
      flash(error.message, "error");
      fill(facts, h("p", { class: "muted" }, error.message));
    });
    return { stop() { stopped = true; if (source) source.close(); } };
  }

  // ANSI SGR colours as spans: a small state machine, text always as text nodes.
  function newSgr() { return { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, pending: "" }; }

  function renderAnsi(pre, chunk, state) {
    const data = state.pending + chunk;
    state.pending = "";
    const re = /\x1b\[([0-9;]*)([A-Za-z])/g;
    let last = 0, m;
    const emit = (s) => {
      if (!s) return;
      const classes = [];
      if (state.fg !== null) classes.push(`fg${state.fg}`);
      if (state.bg !== null) classes.push(`bg${state.bg}`);
      if (state.bold) classes.push("b");
      if (state.dim) classes.push("dim");
      if (state.italic) classes.push("i");
      if (state.underline) classes.push("u");
      if (classes.length) pre.append(h("span", { class: classes.join(" ") }, s));
      else pre.append(document.createTextNode(s));
    };
    while ((m = re.exec(data)) !== null) {
      emit(data.slice(last, m.index));
      last = re.lastIndex;
      if (m[2] !== "m") continue; // other escapes (cursor moves) are dropped
      const codes = m[1] === "" ? [0] : m[1].split(";").map(Number);
      for (let i = 0; i < codes.length; i++) {
        const c = codes[i];
        if (c === 0) Object.assign(state, { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false });
        else if (c === 1) state.bold = true;
        else if (c === 2) state.dim = true;
        else if (c === 3) state.italic = true;
        else if (c === 4) state.underline = true;
        else if (c === 22) { state.bold = false; state.dim = false; }
        else if (c === 23) state.italic = false;
        else if (c === 24) state.underline = false;
        else if (c >= 30 && c <= 37) state.fg = c - 30;
        else if (c >= 90 && c <= 97) state.fg = c - 90 + 8;
        else if (c === 39) state.fg = null;
        else if (c >= 40 && c <= 47) state.bg = c - 40;
        else if (c >= 100 && c <= 107) state.bg = c - 100 + 8;
        else if (c === 49) state.bg = null;
        else if ((c === 38 || c === 48) && codes[i + 1] === 5) { // 256 colours: the first 16 kept
          const n = codes[i + 2];
          if (n < 16) state[c === 38 ? "fg" : "bg"] = n;
          i += 2;
        } else if ((c === 38 || c === 48) && codes[i + 1] === 2) i += 4; // true colour: ignored
      }
    }
    let rest = data.slice(last);
    // An escape cut in two by a chunk's end waits for the next chunk.
    const cut = rest.lastIndexOf("\x1b");
    if (cut !== -1 && /^\x1b(\[[0-9;]*)?$/.test(rest.slice(cut))) { state.pending = rest.slice(cut); rest = rest.slice(0, cut); }
    emit(rest);
  }

  // Cluster: the daemons sharing the store and their heartbeats.
  function cluster() {
    const box = h("div");
    page("Cluster", card("Daemons", box));
    return periodic(async () => {
      const nodes = await api("GET", "/cluster");
      fill(box, table(["Host", "Process", "Daemon id", "Started", "Last heartbeat"], nodes.map((node) => h("tr", null,
        h("td", null, node.host), h("td", { class: "num" }, node.pid), h("td", { class: "mono small" }, node.id),
        h("td", null, localTime(node.started_at)), h("td", null, when(node.last_heartbeat))))));
    });
  }

  // ---- Routing ----------------------------------------------------------------------------

  function route() {
    if (screen) screen.stop();
    const hash = location.hash || "#/";
    const parts = hash.slice(2).split("/").map((p) => { try { return decodeURIComponent(p); } catch (_) { return p; } });
    let nav = "overview";
    if (parts[0] === "jobs" && parts.length > 1 && parts[1] !== "") { nav = "jobs"; screen = jobScreen(parts.slice(1).join("/")); }
    else if (parts[0] === "jobs") { nav = "jobs"; screen = jobs(); }
    else if (parts[0] === "runs" && parts[1]) { nav = "jobs"; screen = runScreen(parts[1]); }
    else if (parts[0] === "new" && can("operator")) { nav = "new"; screen = newJob(); }
    else if (parts[0] === "cluster") { nav = "cluster"; screen = cluster(); }
    else screen = overview();
    document.querySelectorAll("[data-nav]").forEach((a) => {
      if (a.dataset.nav === nav) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    });
  }

  // ---- Theme ------------------------------------------------------------------------------

  function applyTheme(theme) {
    if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
    else delete document.documentElement.dataset.theme;
    const dark = document.documentElement.dataset.theme === "dark" ||
      (!document.documentElement.dataset.theme && matchMedia("(prefers-color-scheme: dark)").matches);
    const button = document.getElementById("theme");
    button.textContent = dark ? "☀ Light" : "☾ Dark";
    button.setAttribute("aria-label", dark ? "Switch to the light theme" : "Switch to the dark theme");
  }

  function storedTheme() {
    try { return localStorage.getItem("tickd-theme"); } catch (_) { return null; }
  }

  async function start() {
    applyTheme(storedTheme());
    document.getElementById("theme").addEventListener("click", () => {
      const dark = document.documentElement.dataset.theme === "dark" ||
        (!document.documentElement.dataset.theme && matchMedia("(prefers-color-scheme: dark)").matches);
      const next = dark ? "light" : "dark";
      try { localStorage.setItem("tickd-theme", next); } catch (_) { /* private mode */ }
      applyTheme(next);
    });
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => applyTheme(storedTheme()));
    try { await loadMe(); } catch (error) { flash(`Cannot reach tickd: ${error.message}`, "error"); }
    window.addEventListener("hashchange", route);
    route();
    document.body.dataset.ready = "true";
  }

  start();
})();
