// Draws an actortrain run report from the JSON in #report-data with
// Chart.js (inlined from Debian's libjs-chart.js). Every chart is built in
// its own try block: one that fails is listed at the top, the rest still draw.
(function () {
  'use strict';
  const started = performance.now();
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const root = document.getElementById('report');
  const run = data.run;
  const classification = run.task === 'classification';
  const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd',
                   '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  const groupIndex = new Map(data.configs.map((c, i) => [c.group, i]));
  const labelOf = new Map(data.configs.map(c => [c.group, c.label]));
  let charts = 0;

  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.size = 12;

  function color(i, alpha) {
    const hex = palette[i % palette.length];
    if (alpha === undefined) return hex;
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${alpha})`;
  }
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children)
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }
  function fmt(x, digits) {
    if (x === null || x === undefined || Number.isNaN(x)) return '-';
    if (typeof x !== 'number') return String(x);
    const d = digits === undefined ? 4 : digits;
    // As the terminal's tables: a diverged loss in scientific notation.
    return Math.abs(x) >= 1e6 ? x.toExponential(d) : x.toFixed(d);
  }
  function duration(s) {
    if (s === null || s === undefined) return '-';
    if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor(s % 3600 / 60)).padStart(2, '0')}m`;
    if (s >= 60) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
    return `${s.toFixed(1)}s`;
  }
  function fail(what, err) {
    const box = document.getElementById('report-errors');
    box.hidden = false;
    box.querySelector('ul').append(el('li', {}, `${what}: ${err && err.message ? err.message : err}`));
    console.error(what, err);
  }
  function section(id, title) {
    const s = el('section', { id });
    s.append(el('h2', {}, title));
    root.append(s);
    return s;
  }
  function table(head, rows, numeric) {
    const t = el('table');
    t.append(el('tr', {}, ...head.map(h => el('th', {}, h))));
    for (const r of rows)
      t.append(el('tr', {}, ...r.map((c, i) =>
        el('td', numeric && numeric[i] ? { class: 'num' } : {}, c))));
    return t;
  }
  // A canvas in `parent`; `build` returns the Chart.js configuration.
  function chart(parent, title, name, build, tall) {
    const box = el('div', {});
    if (title) box.append(el('h3', {}, title));
    const holder = el('div', { class: tall ? 'chart tall' : 'chart' });
    const canvas = el('canvas', { 'data-chart': name });
    holder.append(canvas);
    box.append(holder);
    parent.append(box);
    try {
      const config = build();
      if (!config) { box.remove(); return null; }
      const c = new Chart(canvas, config);
      ++charts;
      return c;
    } catch (e) {
      fail(`chart "${title || name}"`, e);
      box.remove();
      return null;
    }
  }
  const legendFilter = (item, d) => !d.datasets[item.datasetIndex].hideInLegend;

  // --- Summary ----------------------------------------------------------
  function summary() {
    document.title = `actortrain: ${run.name}`;
    root.append(el('h1', {}, `Run ${run.name}`));
    const status = el('span', { class: `status-${run.status}` }, run.status.replace(/_/g, ' '));
    root.append(el('p', { class: 'sub' }, status,
      ` · ${run.networks} networks: ${run.finished} finished, ${run.failed} failed` +
      ` · ${duration(run.wall_seconds)} wall time${run.resumes > 0 ? ' (its last attempt)' : ''} · ${run.grants} grants on ${run.slots.length} slots`));
    const s = section('summary', 'Summary');
    const facts = [
      ['experiment', `${run.experiment_path}`],
      ['task', run.task],
      ['started', run.started_at], ['finished', run.finished_at || '(in progress)'],
      ['resumed', `${run.resumes - run.continuations} time(s)` +
        (run.continuations > 0 ? `, continued to a larger budget ${run.continuations} time(s)` : '')],
      ['optimizer steps', String(run.steps)],
      ['actortrain / LibTorch / CAF', `${run.actortrain_version} / ${run.libtorch_version} / ${run.caf_version}`],
      ['BLAS', run.blas || 'not recorded'],
      ['experiment fingerprint', run.experiment_hash],
      ['results', run.output_dir],
    ];
    s.append(table(['', ''], facts));
    const best = data.ensembles.find(e => e.group === -1);
    const cfgRows = data.configs.map(c => {
      const ens = data.ensembles.find(e => e.group === c.group) ||
                  (data.configs.length === 1 ? best : undefined);
      return [c.label, String(c.networks), String(c.finished), String(c.failed),
              fmt(c.final_median), fmt(c.final_best), ens ? fmt(classification ? ens.accuracy : ens.loss) : '-'];
    });
    const metric = classification ? 'test accuracy' : 'test loss';
    s.append(el('h3', {}, 'Configurations'));
    s.append(table(['configuration', 'networks', 'finished', 'failed', `median ${metric}`,
                    `best ${metric}`, `ensemble ${metric}`], cfgRows,
                   [false, true, true, true, true, true, true]));
    if (best)
      s.append(el('p', {}, `Ensemble of all ${best.networks} finished networks: ` +
        (classification ? `test accuracy ${fmt(best.accuracy)}, ` : '') + `test loss ${fmt(best.loss)}.`));
    s.append(el('h3', {}, 'Slots'));
    s.append(table(['slot', 'device', 'grants', 'busy', 'busy fraction'],
      run.slots.map(u => [String(u.slot), (u.node ? u.node + ' ' : '') + (u.device || '-'),
                          String(u.grants), duration(u.busy_seconds),
                          `${Math.round(100 * u.busy_fraction)}%`]), [false, false, true, true, true]));
    if ((run.nodes || []).length > 0) {
      const mb = b => (b / 1e6).toFixed(2);
      s.append(el('h3', {}, 'Nodes'));
      s.append(el('p', {}, 'Each node of the run: its slots, their grants (queued: given while the slot ' +
        'still computed), how busy they were, and the networks\' states and the data that moved to it.'));
      s.append(table(['node', 'slots', 'grants', 'queued', 'busy', 'busy fraction', 'moves in', 'state in (MB)', 'data in (MB)'],
        run.nodes.map(n => [n.node, String(n.slots), String(n.grants), String(n.queued_grants),
                            duration(n.busy_seconds), `${Math.round(100 * n.busy_fraction)}%`,
                            String(n.moves_in), mb(n.state_bytes_in), mb(n.data_bytes_in)]),
        [false, true, true, true, true, true, true, true, true]));
    }
    const d = el('details', {}, el('summary', {}, 'Experiment file'), el('pre', {}, run.experiment));
    s.append(d);
  }

  // --- Learning curves --------------------------------------------------
  const metricTitle = {
    train_loss: 'Training loss', validation_loss: 'Validation loss', test_loss: 'Test loss',
    validation_accuracy: 'Validation accuracy', test_accuracy: 'Test accuracy',
  };
  function curves() {
    const s = section('curves', 'Learning curves');
    if (data.metrics.length === 0 || data.configs.every(c => c.epochs.length === 0)) {
      s.append(el('p', { class: 'empty' }, 'No epoch was recorded.'));
      return;
    }
    const maxConfigs = 10;
    const shown = data.configs.slice(0, maxConfigs);
    s.append(el('p', { class: 'note' }, data.all_curves
      ? 'Every network as a thin line; per configuration the median (thick) and the 10th-90th percentile band.'
      : 'Per configuration the median (thick) and the 10th-90th percentile band across its networks, and its best 3 networks (thin).'));
    if (data.configs.length > maxConfigs)
      s.append(el('p', { class: 'note' }, `Showing the first ${maxConfigs} of ${data.configs.length} configurations.`));
    const grid = el('div', { class: 'grid' });
    s.append(grid);
    for (const key of data.metrics) {
      chart(grid, metricTitle[key] || key, `curve-${key}`, () => {
        const datasets = [];
        shown.forEach((c) => {
          const i = groupIndex.get(c.group);
          const m = c.curves[key];
          if (!m) return;
          const pts = arr => c.epochs.map((x, j) => ({ x, y: arr[j] }));
          datasets.push({ label: `${c.label} p10`, data: pts(m.low), borderWidth: 0, pointRadius: 0,
                          hideInLegend: true, fill: false, kind: 'band' });
          datasets.push({ label: `${c.label} p90`, data: pts(m.high), borderWidth: 0, pointRadius: 0,
                          backgroundColor: color(i, 0.18), hideInLegend: true, fill: '-1', kind: 'band' });
          datasets.push({ label: `${c.label} (median)`, data: pts(m.median), borderColor: color(i),
                          backgroundColor: color(i), borderWidth: 3, pointRadius: 2, kind: 'median' });
        });
        for (const n of data.individual) {
          const i = groupIndex.get(n.group);
          if (i >= maxConfigs || !n[key]) continue;
          datasets.push({ label: n.name, data: n.epochs.map((x, j) => ({ x, y: n[key][j] })),
                          borderColor: color(i, 0.45), borderWidth: 1, pointRadius: 0,
                          hideInLegend: true, kind: 'network' });
        }
        return {
          type: 'line', data: { datasets },
          options: {
            parsing: false, spanGaps: true, normalized: true,
            scales: { x: { type: 'linear', title: { display: true, text: 'epoch' }, ticks: { precision: 0 } },
                      y: { title: { display: true, text: key.replace(/_/g, ' ') } } },
            plugins: { legend: { labels: { filter: legendFilter } },
                       tooltip: { mode: 'nearest', intersect: false } },
          },
        };
      });
    }
  }

  // --- Final metrics ----------------------------------------------------
  function finals() {
    const s = section('final', classification ? 'Final test accuracy' : 'Final test loss');
    const key = classification ? 'test_accuracy' : 'test_loss';
    const f = data.final;
    const values = [];
    for (let i = 0; i < f.id.length; ++i)
      if (f.status[i] === 'finished' && f[key][i] !== null)
        values.push({ id: f.id[i], group: f.group[i], y: f[key][i] });
    if (values.length === 0) {
      s.append(el('p', { class: 'empty' }, 'No network finished.'));
      return;
    }
    const grid = el('div', { class: 'grid' });
    s.append(grid);
    // Strip plot: one column per configuration, a deterministic jitter.
    chart(grid, 'Per configuration (each dot a network)', 'final-strip', () => {
      const byGroup = new Map();
      for (const v of values) {
        const i = groupIndex.get(v.group);
        const jitter = (((v.id * 2654435761) >>> 0) % 1000) / 1000 - 0.5;
        if (!byGroup.has(i)) byGroup.set(i, []);
        byGroup.get(i).push({ x: i + 0.6 * jitter, y: v.y, id: v.id });
      }
      const datasets = [...byGroup.entries()].map(([i, pts]) => ({
        label: data.configs[i].label, data: pts, pointRadius: values.length > 2000 ? 1.5 : 3,
        backgroundColor: color(i, 0.6), borderWidth: 0 }));
      datasets.push({ type: 'scatter', label: 'median', pointStyle: 'line', pointRadius: 18,
                      borderWidth: 3, borderColor: '#000', hideInLegend: false,
                      data: data.configs.map((c, i) => ({ x: i, y: c.final_median })).filter(p => p.y !== null) });
      return {
        type: 'scatter', data: { datasets },
        options: {
          parsing: false,
          scales: { x: { min: -0.6, max: data.configs.length - 0.4,
                         ticks: { stepSize: 1, callback: v => Number.isInteger(v) && data.configs[v] ? data.configs[v].label : '' } },
                    y: { title: { display: true, text: key.replace(/_/g, ' ') } } },
          plugins: { legend: { display: data.configs.length <= 10 },
                     tooltip: { callbacks: { label: c => c.raw.id !== undefined ? `network ${c.raw.id}: ${fmt(c.raw.y)}` : `median ${fmt(c.raw.y)}` } } },
        },
      };
    });
    // Histogram of all networks, stacked by configuration.
    chart(grid, 'Distribution (all networks)', 'final-histogram', () => {
      let lo = Math.min(...values.map(v => v.y)), hi = Math.max(...values.map(v => v.y));
      if (hi === lo) { lo -= 0.005; hi += 0.005; }
      const bins = Math.min(30, Math.max(8, Math.ceil(Math.sqrt(values.length))));
      const width = (hi - lo) / bins;
      const shown = Math.min(data.configs.length, 10);
      const counts = Array.from({ length: shown + 1 }, () => new Array(bins).fill(0));
      for (const v of values) {
        const b = Math.min(bins - 1, Math.floor((v.y - lo) / width));
        counts[Math.min(groupIndex.get(v.group), shown)][b] += 1;
      }
      const labels = counts[0].map((_, b) => (lo + (b + 0.5) * width).toFixed(4));
      const datasets = counts.map((c, i) => ({
        label: i < shown ? data.configs[i].label : 'other configurations', data: c,
        backgroundColor: i < shown ? color(i, 0.75) : '#bbb' })).filter(d => d.data.some(x => x > 0));
      return {
        type: 'bar', data: { labels, datasets },
        options: { scales: { x: { stacked: true, title: { display: true, text: key.replace(/_/g, ' ') } },
                             y: { stacked: true, title: { display: true, text: 'networks' }, ticks: { precision: 0 } } },
                   plugins: { legend: { display: datasets.length > 1 } } },
      };
    });
    // The ensemble against its number of members.
    if (data.ensemble_curve.length > 0) {
      const ekey = classification ? 'accuracy' : 'loss';
      chart(grid, `Ensemble ${classification ? 'accuracy' : 'loss'} against its number of members`, 'ensemble-curve', () => {
        const datasets = data.ensemble_curve.map(c => {
          const i = c.group < 0 ? -1 : groupIndex.get(c.group);
          return { label: c.group < 0 ? 'all networks' : c.label,
                   data: c.members.map((m, j) => ({ x: m, y: c[ekey][j] })),
                   borderColor: i < 0 ? '#000' : color(i), backgroundColor: i < 0 ? '#000' : color(i),
                   borderWidth: i < 0 ? 3 : 1.5, pointRadius: 2 };
        });
        const sorted = values.map(v => v.y).sort((a, b) => a - b);
        const best = classification ? sorted[sorted.length - 1] : sorted[0];
        const median = sorted[Math.floor(sorted.length / 2)];
        const maxM = Math.max(...data.ensemble_curve.map(c => c.members[c.members.length - 1]));
        for (const [label, y, dash] of [['best single network', best, [6, 4]], ['median single network', median, [2, 3]]])
          datasets.push({ label, data: [{ x: 1, y }, { x: maxM, y }], borderColor: '#888', borderDash: dash,
                          borderWidth: 1.5, pointRadius: 0 });
        return {
          type: 'line', data: { datasets },
          options: { parsing: false,
                     scales: { x: { type: maxM > 40 ? 'logarithmic' : 'linear', title: { display: true, text: 'members (first k networks by id)' } },
                               y: { title: { display: true, text: `test ${ekey}` } } } },
        };
      });
    }
  }

  // --- Schedule ---------------------------------------------------------
  function schedule() {
    const s = section('schedule', 'Schedule');
    const g = data.schedule;
    if (g.slot.length === 0) {
      s.append(el('p', { class: 'empty' }, 'No slot was granted.'));
      return;
    }
    s.append(el('p', { class: 'note' }, `${g.slot.length} grants; each bar a quantum on a slot, coloured by configuration.`));
    const usage = new Map(run.slots.map(u => [u.slot, u]));
    const slotIds = [...new Set(g.slot)].sort((a, b) => a - b);
    const rowLabel = id => {
      const u = usage.get(id);
      return u ? `slot ${id} · ${Math.round(100 * u.busy_fraction)}% busy` : `slot ${id}`;
    };
    const holder = el('div', {});
    s.append(holder);
    const c = chart(holder, null, 'schedule', () => {
      const shown = Math.min(data.configs.length, 10);
      const sets = Array.from({ length: shown + 1 }, () => []);
      for (let i = 0; i < g.slot.length; ++i) {
        const ci = g.group[i] === null ? shown : Math.min(groupIndex.get(g.group[i]), shown);
        sets[ci].push({ x: [g.start[i], g.end[i]], y: rowLabel(g.slot[i]), network: g.network[i], steps: g.steps[i] });
      }
      const datasets = sets.map((d, i) => ({
        label: i < shown ? data.configs[i].label : 'other configurations', data: d,
        backgroundColor: i < shown ? color(i, 0.8) : '#999', borderColor: '#fff', borderWidth: g.slot.length > 2000 ? 0 : 1,
        borderSkipped: false, grouped: false, barPercentage: 0.8, categoryPercentage: 1 })).filter(d => d.data.length > 0);
      return {
        type: 'bar', data: { labels: slotIds.map(rowLabel), datasets },
        options: { indexAxis: 'y',
                   scales: { x: { type: 'linear', min: 0, title: { display: true, text: run.resumes > 0 ? 'seconds of the schedule (its attempts one after another)' : 'seconds since the scheduler started' } } },
                   plugins: { legend: { display: datasets.length > 1 },
                              tooltip: { callbacks: { label: c => `network ${c.raw.network}: ${c.raw.x[0].toFixed(2)}-${c.raw.x[1].toFixed(2)} s, ${c.raw.steps} steps` } } } },
      };
    });
    if (c) c.canvas.parentNode.style.height = `${Math.max(140, 60 + 34 * slotIds.length)}px`;
    if (c) c.resize();
  }

  // --- Failures ---------------------------------------------------------
  function failures() {
    if (data.failures_total === 0 && data.errors_total === 0) return;
    const s = section('failures', 'Failures');
    if (data.failures_total > 0) {
      s.append(el('h3', {}, `${data.failures_total} network(s) failed`));
      s.append(table(['network', 'configuration', 'steps', 'reason'],
        data.failures.map(f => [f.name, f.configuration, String(f.steps), f.error])));
    }
    if (data.errors_total > 0) {
      s.append(el('h3', {}, `${data.errors_total} failure(s) recorded, retried or final`));
      s.append(table(['network', 'steps', 'at', 'message'],
        data.errors.map(e => [e.name, String(e.steps), e.at, e.message])));
    }
    if (data.failures.length < data.failures_total || data.errors.length < data.errors_total)
      s.append(el('p', { class: 'note' }, 'Only the first 200 of each are listed; actortrain results DIR --format json has them all.'));
  }

  // --- The adaptive search's decisions ---------------------------------
  function search() {
    const d = data.search;
    if (!d || d.decisions === 0) return;
    const s = section('search', 'Search decisions');
    const kinds = ['continue', 'promote', 'wait', 'stop', 'exploit', 'refused']
      .filter(k => d.rungs.some(r => r.actions[k]));
    s.append(el('p', {}, `${d.decisions} decision(s) of the adaptive search (scheduler.search), ` +
      'per rung (in epochs; PBT: the interval epoch): how many networks went on, were promoted, ' +
      'waited, were stopped or copied a better network.'));
    s.append(table(['rung (epoch)', ...kinds],
      d.rungs.map(r => [String(r.rung), ...kinds.map(k => String(r.actions[k] || 0))]),
      [true, ...kinds.map(() => true)]));
    if (d.exploits_total > 0) {
      // Folded: a long PBT run makes hundreds.
      const copies = el('details', {}, el('summary', {},
        `${d.exploits_total} PBT cop${d.exploits_total === 1 ? 'y' : 'ies'}: the network, the epoch, ` +
        'the network it copied, and its hyperparameters before and after'));
      copies.append(table(['network', 'epoch', 'copied', 'before', 'after'],
        d.exploits.map(e => [e.network, String(e.epoch), e.donor, e.before, e.after])));
      if (d.exploits.length < d.exploits_total)
        copies.append(el('p', { class: 'note' }, 'Only the first 200 are listed; the decisions table of results.db has them all.'));
      s.append(copies);
    }
  }

  // --- Stalls: times no quantum started or ended for a while -----------
  function stalls() {
    if (!data.stalls_total) return;
    const s = section('stalls', 'Stalls');
    s.append(el('p', {}, `The run made no progress ${data.stalls_total} time(s) for longer than ` +
      'scheduler.stall_report_seconds: when it said so (seconds of the schedule), how long no quantum ' +
      'had started or ended, when one did again (-: never, the run ended or was killed waiting), and what it waited on.'));
    s.append(table(['at (s)', 'quiet (s)', 'went on at (s)', 'what it waited on'],
      data.stalls.map(x => [x.time.toFixed(1), x.quiet_seconds.toFixed(1),
                            x.ended === null ? '-' : x.ended.toFixed(1), x.report]),
      [true, true, true, false]));
    if (data.stalls.length < data.stalls_total)
      s.append(el('p', { class: 'note' }, 'Only the first 200 are listed; the stalls table of results.db has them all.'));
  }

  for (const [name, part] of [['summary', summary], ['learning curves', curves],
                              ['final metrics', finals], ['schedule', schedule], ['search', search],
                              ['failures', failures], ['stalls', stalls]]) {
    try { part(); } catch (e) { fail(name, e); }
  }
  document.body.dataset.charts = String(charts);
  document.body.dataset.renderMs = String(Math.round(performance.now() - started));
  document.body.dataset.ready = 'true';
})();
