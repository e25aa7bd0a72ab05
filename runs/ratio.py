"""The "Current ratio" of a run, as Locust's web UI shows it: the share of each user class and of
each of its tasks (locust.user.inspectuser.get_ratio), here from the locustfile's static analysis
(version.findings), and the users running per class as the slots report them (Run.class_users)
or, before they do, as Locust would distribute the users.

`ratio_model` is what the page needs once (classes with weight and fixed_count, tasks with their
share of their parent after the run's tag filters); `ratio` turns it into Locust's numbers for a
user count (or the reported counts), as static/swarmdeck/ratio.js does on the live page whenever
the users change.
"""

from __future__ import annotations


def ratio_model(findings: dict, params: dict) -> dict:
    """{"classes": [{name, weight, fixed_count, tasks: [{name, share, taskset, tasks}]}], "approximate": bool}.

    The classes are the run's (params["user_classes"], else every concrete one, without weight 0),
    tasks filtered by params' tags and exclude_tags like Locust's filter_tasks_by_tags. A weight that
    is not a literal counts as 1 and makes the model approximate."""
    wanted = list(params.get("user_classes") or [])
    classes = {c["name"]: c for c in findings.get("user_classes") or [] if not c.get("abstract")}
    chosen = [classes[name] for name in wanted if name in classes] if wanted else list(classes.values())
    tags = set(params.get("tags") or []) or None
    exclude = set(params.get("exclude_tags") or []) or None
    approximate = False

    def number(value, default):
        nonlocal approximate
        if value is None:
            return default
        if not isinstance(value, int):
            approximate = True
            return default
        return value

    def tasks_of(items: list[dict], inherited: frozenset) -> list[dict]:
        nonlocal approximate
        kept = []
        for item in items:
            own = inherited | set(item.get("tags") or [])
            if item.get("kind") == "taskset":
                nested = tasks_of(item.get("tasks") or [], own)
                if not nested and not item.get("transitions"):
                    continue
            else:
                nested = []
                if tags is not None and not own & tags:
                    continue
                if exclude is not None and own & exclude:
                    continue
            if item.get("weight") is None:
                approximate = True
            kept.append({"name": item["name"], "weight": max(0, item.get("weight") or 1), "tasks": nested,
                         "taskset": item.get("kind") == "taskset"})
        total = sum(t["weight"] for t in kept) or 1
        return [{"name": t["name"], "share": t["weight"] / total, "taskset": t["taskset"], "tasks": t["tasks"]}
                for t in kept]

    result = []
    for cls in chosen:
        weight, fixed = number(cls.get("weight"), 1), number(cls.get("fixed_count"), 0)
        if weight == 0 and not fixed:
            continue
        result.append({"name": cls["name"], "weight": weight, "fixed_count": fixed,
                       "tasks": tasks_of(cls.get("tasks") or [], frozenset(cls.get("tags") or []))})
    return {"classes": result, "approximate": approximate}


def distribution(classes: list[dict], users: int) -> dict[str, int]:
    """Users per class for `users` in all, as locust.user.inspectuser._calc_distribution counts them."""
    fixed = sum(c["fixed_count"] for c in classes if c["fixed_count"])
    total_weight = sum(c["weight"] for c in classes if not c["fixed_count"]) or 1
    users = users or (total_weight if not fixed else 1)
    weighted = max(0, users - fixed)
    return {c["name"]: round(c["fixed_count"] or c["weight"] / total_weight * weighted) for c in classes}


def ratio(model: dict, users: int, total: bool, counts: dict[str, int] | None = None) -> dict:
    """Locust's get_ratio for that many users: {class: {"ratio", "tasks": {task: {"ratio", ["tasks"]}}}};
    per class (total False) a task's share of its class, else of all users. With `counts` (users
    running per class, as the slots report them: Run.class_users), those instead of the computed ones."""
    counts = {c["name"]: int((counts or {}).get(c["name"], 0)) for c in model["classes"]} if counts \
        else distribution(model["classes"], users)
    spawned = sum(counts.values()) or 1

    def tasks(items: list[dict], parent: float) -> dict:
        result = {}
        for item in items:
            entry = {"ratio": parent * item["share"]}
            if item["taskset"]:
                entry["tasks"] = tasks(item["tasks"], entry["ratio"])
            result[item["name"]] = entry
        return result

    return {c["name"]: {"ratio": counts[c["name"]] / spawned,
                        "tasks": tasks(c["tasks"], counts[c["name"]] / spawned if total else 1.0)}
            for c in model["classes"]}
