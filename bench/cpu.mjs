// Server CPU from /proc: utime + stime (fields 14 and 15 of /proc/<pid>/stat, in clock ticks)
// of the processes under one `wrangler dev`, split into workerd (the runtime serving requests)
// and node (wrangler itself). `wrangler dev` runs two workerd processes: one for its proxy
// worker, which owns the public port and forwards every request, and one for the user worker
// (`--socket-addr=entry=127.0.0.1:0`); `worker` is the latter alone.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** { pid, ppid, comm, ticks } of one process, or undefined if it is gone. */
function stat(pid) {
  let s;
  try { s = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return undefined; }
  // comm may contain spaces and parentheses: it ends at the last ')'.
  const close = s.lastIndexOf(')');
  const comm = s.slice(s.indexOf('(') + 1, close);
  const f = s.slice(close + 2).split(' '); // f[0] is field 3 (state)
  return { pid, ppid: Number(f[1]), comm, ticks: Number(f[11]) + Number(f[12]) };
}

/** Every process in the tree rooted at `root` (root included), from the ppid links. */
export function processTree(root) {
  const all = [];
  for (const name of readdirSync('/proc')) if (/^\d+$/.test(name)) { const p = stat(Number(name)); if (p) all.push(p); }
  const children = new Map();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) || []), p]);
  const out = [];
  const queue = all.filter((p) => p.pid === root);
  while (queue.length) {
    const p = queue.shift();
    out.push(p);
    queue.push(...(children.get(p.pid) || []));
  }
  return out;
}

/**
 * A CPU meter for one wrangler tree serving `port`: `sample()` returns { workerd, worker, node,
 * other } in milliseconds of CPU used so far by the tree's current processes (`worker` is the
 * user worker's workerd, included in `workerd`). Differences of two samples are what a window cost.
 */
export function cpuMeter(rootPid, port) {
  const proxy = new Map(); // pid → owns the public port (wrangler's proxy worker)
  const isProxy = (pid) => {
    if (!proxy.has(pid)) {
      let cmd = '';
      try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { /* gone */ }
      proxy.set(pid, cmd.includes(`entry=127.0.0.1:${port}`));
    }
    return proxy.get(pid);
  };
  return {
    sample() {
      const sum = { workerd: 0, worker: 0, node: 0, other: 0 };
      for (const p of processTree(rootPid)) {
        const ms = (p.ticks * 1000) / CLK_TCK;
        if (p.comm === 'workerd') {
          sum.workerd += ms;
          if (!isProxy(p.pid)) sum.worker += ms;
        } else {
          sum[p.comm === 'node' ? 'node' : 'other'] += ms;
        }
      }
      return sum;
    },
  };
}
