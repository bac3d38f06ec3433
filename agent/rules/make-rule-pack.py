#!/usr/bin/env python3
"""Write the RMM rule pack: one Sentinel hunting rule per tool.

    make-rule-pack.py [TSV [OUTDIR]]

TSV has the columns tool, operator (has | has_any), needles ('|'-separated),
upstream_commit, note (default: /work/shared/reference/rmm-signers.tsv).
Each rule goes to OUTDIR/<tool>_filesig.yaml (default: rmm/ next to this
script), in exactly the shape of rules/rmm_Pulseway_filesig.yaml,
the upstream Sentinel file.

Ids are uuid5 of the tool name in a fixed signwatch namespace, so re-running
gives the same ids. Pulseway keeps the upstream id of the built-in rule: its
pack file is the same rule, and the loader can tell the two are one.
Output is UTF-8 (DWSNET O\u00dc, Kr\u00e4mer) with LF line endings.
"""
import csv
import os
import sys
import uuid

# Namespace for pack ids: uuid5(NAMESPACE_DNS, "rules.signwatch"). Never change
# it, or every deployed summary loses its rule id.
PACK_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, 'rules.signwatch')
PULSEWAY_ID = '6192b741-4540-4416-8dbb-ce0405166d0a'

TEMPLATE = """\
id: {id}
name: Remote Management and Monitoring tool - {tool} - File Signature
description: |
    Remote Monitoring and Management (RMM) programs are IT to manage remote endpoints. Attackers have begun to abuse these programs to persist or provide C2 channels.
    https://github.com/jischell-msft/RemoteManagementMonitoringTools
requiredDataConnectors:
- connectorId: MicrosoftThreatProtection
  dataTypes:
  - DeviceFileCertificateInfo
tactics: CommandAndControl
relevantTechniques: T1219
query: |
  let Time_start = now(-5d);
  let Time_end = now();
  //
  DeviceFileCertificateInfo
  | where Timestamp between (Time_start..Time_end)
  | where Signer {predicate}
  | summarize FirstSeen=min(Timestamp), LastSeen=max(Timestamp), \n\
      Report=make_set(ReportId), Count=count() by DeviceId, DeviceName
"""


def kql_string(s):
    """A single-quoted KQL string literal."""
    return "'" + s.replace('\\', '\\\\').replace("'", "\\'") + "'"


def safe_tool(tool):
    # The tool name becomes a file name and sits in a YAML plain scalar.
    ok = all(c.isalnum() or c in '._-' for c in tool)
    if not tool or not ok or tool.startswith('.'):
        sys.exit('make-rule-pack: unusable tool name %r' % tool)
    return tool


def rule_text(tool, op, needles):
    if op == 'has':
        if len(needles) != 1:
            sys.exit('make-rule-pack: %s: has takes one needle' % tool)
        predicate = 'has ' + kql_string(needles[0])
    elif op == 'has_any':
        predicate = 'has_any (' + ', '.join(kql_string(n) for n in needles) + ')'
    else:
        sys.exit('make-rule-pack: %s: unsupported operator %r' % (tool, op))
    rid = PULSEWAY_ID if tool == 'Pulseway' else str(uuid.uuid5(PACK_NAMESPACE, tool))
    return TEMPLATE.format(id=rid, tool=tool, predicate=predicate)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    tsv = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, '..', '..', '..', 'shared', 'reference', 'rmm-signers.tsv')
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, 'rmm')
    os.makedirs(out, exist_ok=True)
    seen = set()
    with open(tsv, encoding='utf-8', newline='') as f:
        rows = list(csv.DictReader(f, delimiter='\t', quoting=csv.QUOTE_NONE))
    for row in rows:
        tool = safe_tool(row['tool'].strip())
        if tool in seen:
            sys.exit('make-rule-pack: duplicate tool %s' % tool)
        seen.add(tool)
        needles = [n.strip() for n in row['needles'].split('|') if n.strip()]
        if not needles:
            sys.exit('make-rule-pack: %s: no needles' % tool)
        path = os.path.join(out, tool + '_filesig.yaml')
        with open(path, 'w', encoding='utf-8', newline='\n') as g:
            g.write(rule_text(tool, row['operator'].strip(), needles))
    print('make-rule-pack: wrote %d rules to %s' % (len(rows), os.path.normpath(out)))


if __name__ == '__main__':
    main()
