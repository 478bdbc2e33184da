"""Joins a person would otherwise do by hand: the DNS name a peer's address was resolved from in the same pod
(`remote_name`), and the executable and command line of the process behind each row (`exe`, `cmdline`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

HOST = "(host)"
_SELF_EXE = "/proc/self/exe"  # busybox and others re-exec themselves: argv[0] names the program


def _codes(values: pd.Series) -> np.ndarray:
    """Integer codes of a column's values (categorical codes as they are; anything else factorized)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy()
    return pd.factorize(values, use_na_sentinel=False)[0]


def per_distinct(df: pd.DataFrame, columns: list[str], fn) -> pd.Series:
    """fn(*values) for each row, computed once per distinct combination of the columns (absent ones are "")."""
    from gadgetbook.frames.coded import factorize_rows

    present = [c for c in columns if c in df]
    if not len(df):
        return pd.Series([], index=df.index, dtype=object)
    if not present:
        return pd.Series([fn(*([""] * len(columns)))] * len(df), index=df.index, dtype=object)
    codes, first = factorize_rows(*[_codes(df[c]).astype(np.int64) for c in present])
    rows = df.iloc[first]
    values = [fn(*[str(rows[c].iloc[i]) if c in df else "" for c in columns]) for i in range(len(first))]
    return pd.Series(np.array(values, dtype=object)[codes], index=df.index, dtype=object)


def _who(node: str, ns: str, pod: str, container: str) -> str:
    return f"{node}/{ns}/{pod or container or HOST}"


def workload_key(df: pd.DataFrame) -> pd.Series:
    """Who a row belongs to: node/namespace/pod in a cluster, node/container on a host, node/(host) otherwise."""
    return per_distinct(df, ["node", "namespace", "pod", "container"], _who)


def normal_address(addresses: pd.Series) -> pd.Series:
    """IPv4 on an IPv6 socket (::ffff:10.0.0.1) written as plain IPv4, as DNS answers write it."""
    text = addresses.astype(str)
    return text.str.replace(r"^::ffff:(?=\d+\.\d+\.\d+\.\d+$)", "", regex=True)


def executable(path: pd.Series, args: pd.Series) -> pd.Series:
    """The program a process runs: the exec path, or argv[0] where the path is /proc/self/exe."""
    path = path.astype(str)
    first = args.astype(str).str.split(" ", n=1).str[0]
    return path.where(path != _SELF_EXE, first)


_TABLE = {"node": str, "pid": np.int64, "who": str, "comm": str, "timestamp": "datetime64[ns]", "exe": str,
          "cmdline": str}


def process_table(execs: pd.DataFrame | None, snapshot: list[dict] | None) -> pd.DataFrame:
    """(node, pid, workload, comm, timestamp) -> exe, cmdline: every successful exec seen, and the processes
    found at the start (stamped at the earliest time, so an exec seen later wins)."""
    parts = []
    if snapshot:
        snap = pd.DataFrame(snapshot)
        parts.append(pd.DataFrame({"node": snap["node"].astype(str), "pid": snap["pid"].astype(np.int64),
                                   "who": workload_key(snap), "comm": snap.get("comm", pd.Series("", index=snap.index)),
                                   "timestamp": pd.Timestamp.min.as_unit("ns"), "exe": snap["exe"].astype(str),
                                   "cmdline": snap["cmdline"].astype(str)}))
    if execs is not None and len(execs) and {"pid", "path", "args"} <= set(execs.columns):
        # Successful execs: no error name (recordings made before that column had a name carry `ret`).
        ok = (execs[execs["error"].astype(str) == ""] if "error" in execs
              else execs[execs["ret"] == 0] if "ret" in execs else execs)
        parts.append(pd.DataFrame({"node": ok["node"].astype(str), "pid": ok["pid"].astype(np.int64),
                                   "who": workload_key(ok), "comm": ok["comm"].astype(str),
                                   "timestamp": ok["timestamp"].astype("datetime64[ns]"),
                                   "exe": executable(ok["path"], ok["args"]), "cmdline": ok["args"].astype(str)}))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _TABLE.items()})
    return pd.concat(parts, ignore_index=True)


def _asof(left: pd.DataFrame, right: pd.DataFrame, by: list[str], take: list[str]) -> pd.DataFrame:
    """For each left row, `take` from the latest right row with the same `by` at or before its timestamp."""
    out = pd.DataFrame({c: pd.Series("", index=left.index, dtype=object) for c in take})
    if not len(left) or not len(right):
        return out
    # One integer key per distinct `by` combination, shared by both sides.
    from gadgetbook.frames.coded import factorize_rows

    parts = [pd.factorize(pd.concat([left[c], right[c]], ignore_index=True).astype(object))[0].astype(np.int64)
             for c in by]
    key = factorize_rows(*parts)[0]
    l_ = pd.DataFrame({"_k": key[:len(left)], "timestamp": left["timestamp"].to_numpy().astype("datetime64[ns]"),
                       "_row": np.arange(len(left))})
    r_ = pd.DataFrame({"_k": key[len(left):], "timestamp": right["timestamp"].to_numpy().astype("datetime64[ns]")})
    for c in take:
        r_[c] = right[c].to_numpy()
    merged = pd.merge_asof(l_.sort_values("timestamp", kind="stable"), r_.sort_values("timestamp", kind="stable"),
                           on="timestamp", by="_k", direction="backward")
    merged = merged.sort_values("_row")
    for c in take:
        out[c] = merged[c].fillna("").to_numpy()
    return out


def with_process(df: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """df plus `exe` and `cmdline` of the process behind each row ("" where it is not known).

    A process is known by its pid from its exec, or from the start; a child forked without an exec (a server's
    worker, a subshell) by the last known process of the same name in the same workload, whose program it runs.
    """
    if "pid" not in df or "timestamp" not in df:
        return df
    left = pd.DataFrame({"node": df["node"] if "node" in df else "", "pid": df["pid"].astype(np.int64),
                         "who": workload_key(df), "comm": df["comm"] if "comm" in df else "",
                         "timestamp": df["timestamp"]}, index=df.index)
    found = _asof(left, table, ["node", "pid"], ["exe", "cmdline"])
    unknown = (found["exe"] == "") & (found["cmdline"] == "")
    if unknown.any():
        forked = _asof(left[unknown.to_numpy()], table, ["who", "comm"], ["exe", "cmdline"])
        found.loc[unknown.to_numpy(), ["exe", "cmdline"]] = forked[["exe", "cmdline"]].to_numpy()
    out = df.copy()
    out["exe"] = pd.Categorical(found["exe"].to_numpy())
    out["cmdline"] = found["cmdline"].astype(str).to_numpy()
    return out


def resolutions(dns: pd.DataFrame | None) -> pd.DataFrame:
    """One row per (workload, address, name) a DNS response received by the workload gave, with its time."""
    cols = ["timestamp", "who", "address", "name"]
    if dns is None or not len(dns) or not {"answers", "qr", "name"} <= set(dns.columns):
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c == "timestamp" else object) for c in cols})
    got = dns[(dns["qr"].astype(str) == "response") & (dns["answers"].astype(str) != "")]
    if "direction" in got:
        got = got[got["direction"].astype(str) == "received"]
    rows = pd.DataFrame({"timestamp": got["timestamp"], "who": workload_key(got),
                         "address": got["answers"].astype(str).str.split(","), "name": got["name"].astype(str)})
    return rows.explode("address", ignore_index=True)[cols]


def with_remote_name(conns: pd.DataFrame, dns: pd.DataFrame | None) -> pd.DataFrame:
    """Connections plus `remote_name`: the name whose lookup, in the same pod (or container), last answered the
    peer's address before the connection ("" where no lookup did)."""
    if "daddr" not in conns:
        return conns
    left = pd.DataFrame({"who": workload_key(conns), "address": normal_address(conns["daddr"]),
                         "timestamp": conns["timestamp"]}, index=conns.index)
    found = _asof(left, resolutions(dns), ["who", "address"], ["name"])
    out = conns.copy()
    out["remote_name"] = pd.Categorical(found["name"].to_numpy())
    return out
