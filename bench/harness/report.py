"""Figures, raw data and the markdown results table."""
import json
import os
import shutil

SECTION_ORDER = ("API", "Bulk", "Memory", "Restart", "Firing", "Hostile load")


class Results:
    def __init__(self, header):
        self.header = header
        self.figures = {}  # key -> {label, section, command, values: {kind: {value, text}}}
        self.raw = {}      # kind -> step -> data
        self.notes = []
        self.failures = []

    def set(self, key, kind, value, text, command, label, section, ratio=True):
        fig = self.figures.setdefault(key, {"label": label, "section": section,
                                            "command": command, "values": {}, "ratio": ratio})
        fig["values"][kind] = {"value": value, "text": text}

    def fail(self, section, kind, message):
        self.failures.append({"section": section, "server": kind, "error": message})

    def raw_step(self, kind, step, data):
        self.raw.setdefault(kind, {})[step] = data

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    def ratio(self, fig):
        if not fig.get("ratio", True):
            return "—"
        a = fig["values"].get("tickd", {}).get("value")
        b = fig["values"].get("original", {}).get("value")
        if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
            return "—"
        if b == 0:
            return "—" if a != 0 else "="
        r = a / b
        if r >= 100:
            return "%.0f×" % r
        if r >= 10:
            return "%.1f×" % r
        return "%.2f×" % r

    def markdown(self):
        h = self.header
        out = ["# tickd vs the original Flask-APScheduler service: benchmark results", ""]
        if h.get("quick"):
            out += ["> **Smoke run (`--quick`)**: small counts and short durations to prove every "
                    "measurement works end to end. These are not the published figures.", ""]
        m = h["machine"]
        out += [
            "- **Machine**: %s cores (%s usable), %s GiB memory, %s; %s, kernel %s; load average "
            "at start %s; write+fsync in `bench/out` %s ms." % (
                m.get("cores"), m.get("usable_cores"), m.get("memory_gib"), m.get("cpu", "?"),
                m.get("os", "?"), m.get("kernel"),
                " / ".join("%.2f" % x for x in m.get("loadavg_at_start") or []),
                m.get("fsync_ms", "?")),
            "- **tickd**: %s" % h["tickd"],
            "- **original**: %s" % h["original"],
            "- **Load**: %s" % h["load"],
            "- **Run**: `%s`, started %s, took %s; raw data `%s`." % (
                h["command"], h["started"], h.get("took", "?"), h["raw"]),
            "",
            "Ratio = tickd / original: above 1 is better for requests/s and creates/s, below 1 "
            "is better for latency, lateness, time and memory. `—` where a ratio means nothing "
            "or a side has no figure.",
            "",
            "| Figure | tickd | original | ratio tickd / original | command |",
            "|---|---|---|---|---|",
        ]
        for section in SECTION_ORDER:
            rows = [(k, f) for k, f in self.figures.items() if f["section"] == section]
            if not rows:
                continue
            out.append("| **%s** | | | | |" % section)
            for _key, fig in rows:
                cells = [fig["values"].get(k, {}).get("text", "not run") for k in ("tickd", "original")]
                out.append("| %s | %s | %s | %s | `%s` |" % (
                    _esc(fig["label"]), _esc(cells[0]), _esc(cells[1]), self.ratio(fig),
                    fig["command"].replace("|", "\\|")))
        if self.failures:
            out += ["", "## Measurements that failed", ""]
            for f in self.failures:
                out.append("- %s / %s: %s" % (f["section"], f["server"], _esc(f["error"])))
        if self.notes:
            out += ["", "## Notes", ""]
            out += ["- " + _esc(n) for n in self.notes]
        out.append("")
        return "\n".join(out)

    def write(self, run_dir, out_dir):
        text = self.markdown()
        with open(os.path.join(run_dir, "results.md"), "w") as fh:
            fh.write(text)
        with open(os.path.join(run_dir, "raw.json"), "w") as fh:
            json.dump({"header": self.header, "figures": self.figures, "raw": self.raw,
                       "notes": self.notes, "failures": self.failures}, fh, indent=1, default=str)
        shutil.copyfile(os.path.join(run_dir, "results.md"), os.path.join(out_dir, "results.md"))
        return text


def _esc(text):
    return str(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
