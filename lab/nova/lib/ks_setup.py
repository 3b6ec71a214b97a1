#!/usr/bin/env python3
"""Idempotent Keystone setup for the loopback mini-cloud (stdlib only).

default:            create project 'service', users nova/placement/glance/
                    neutron (roles admin+service on 'service'), services and
                    public+internal endpoints for compute/placement/image/network.
--wait-computes H1,H2,.. [SECONDS]:  wait until the nova-compute services
                    of these hosts are 'up' in Nova (exit 1 on timeout).
"""
import json, os, sys, time, urllib.request, urllib.error

KS = 'http://127.0.0.1:5000'
PW = os.environ.get('IHA_NOVA_PASSWORD', 'secret')
H = '127.0.0.1'


def req(method, url, token=None, body=None, headers=None):
    h = {'Content-Type': 'application/json', 'Accept': 'application/json'}
    if token:
        h['X-Auth-Token'] = token
    h.update(headers or {})
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            txt = resp.read()
            return resp.status, resp.headers, (json.loads(txt) if txt else None)
    except urllib.error.HTTPError as e:
        txt = e.read()
        try:
            return e.code, e.headers, json.loads(txt)
        except Exception:
            return e.code, e.headers, txt


def token():
    body = {'auth': {'identity': {'methods': ['password'], 'password': {'user': {
        'name': 'admin', 'domain': {'id': 'default'}, 'password': PW}}},
        'scope': {'project': {'name': 'admin', 'domain': {'id': 'default'}}}}}
    st, hd, _ = req('POST', KS + '/v3/auth/tokens', body=body)
    assert st == 201, st
    return hd['X-Subject-Token']


def find(tok, coll, key, **flt):
    q = '&'.join('%s=%s' % kv for kv in flt.items())
    st, _, b = req('GET', '%s/v3/%s?%s' % (KS, coll, q), tok)
    assert st == 200, (st, b)
    return b[key]


def ensure(tok, coll, key, body, **flt):
    items = find(tok, coll, key + 's' if not key.endswith('s') else key, **flt)
    if items:
        return items[0]
    st, _, b = req('POST', '%s/v3/%s' % (KS, coll), tok, {key: body})
    assert st == 201, (st, b)
    return b[key]


def setup():
    tok = token()
    proj = ensure(tok, 'projects', 'project',
                  {'name': 'service', 'domain_id': 'default'}, name='service')
    roles = {r['name']: r['id'] for r in find(tok, 'roles', 'roles')}
    if 'service' not in roles:
        roles['service'] = ensure(tok, 'roles', 'role', {'name': 'service'},
                                  name='service')['id']
    for user in ('nova', 'placement', 'glance', 'neutron'):
        u = ensure(tok, 'users', 'user', {'name': user, 'domain_id': 'default',
                                          'password': PW}, name=user)
        for role in ('admin', 'service'):
            st, _, b = req('PUT', '%s/v3/projects/%s/users/%s/roles/%s' % (
                KS, proj['id'], u['id'], roles[role]), tok)
            assert st in (200, 204), (st, b)
    svcs = [('nova', 'compute', 'http://%s:8774/v2.1' % H),
            ('placement', 'placement', 'http://%s:8778' % H),
            ('glance', 'image', 'http://%s:9292' % H),
            ('neutron', 'network', 'http://%s:9696' % H)]
    for name, typ, url in svcs:
        s = ensure(tok, 'services', 'service', {'name': name, 'type': typ},
                   type=typ)
        for iface in ('public', 'internal'):
            ensure(tok, 'endpoints', 'endpoint',
                   {'service_id': s['id'], 'interface': iface, 'url': url,
                    'region_id': 'RegionOne'},
                   service_id=s['id'], interface=iface)
    print('keystone setup ok')


def wait_computes(hosts, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            tok = token()
            st, _, b = req('GET', 'http://%s:8774/v2.1/os-services?binary=nova-compute' % H, tok,
                           headers={'OpenStack-API-Version': 'compute 2.53'})
            if st == 200:
                up = set(s['host'] for s in b['services'] if s['state'] == 'up')
                print('computes up: %s' % sorted(up))
                if set(hosts) <= up:
                    return
        except Exception as e:  # noqa
            print('waiting: %r' % e)
        time.sleep(1)
    sys.exit('computes did not come up')


def services(tok):
    st, _, b = req('GET', 'http://%s:8774/v2.1/os-services?binary=nova-compute' % H, tok,
                   headers={'OpenStack-API-Version': 'compute 2.53'})
    assert st == 200, (st, b)
    return b['services']


def show_computes():
    tok = token()
    print('%-30s %-8s %-6s %-11s %s' % ('nova-compute host', 'status', 'state', 'forced_down', 'updated_at'))
    for s in sorted(services(tok), key=lambda s: s['host']):
        print('%-30s %-8s %-6s %-11s %s' % (s['host'], s['status'], s['state'], s['forced_down'], s['updated_at']))


def wait_report(host, since, timeout):
    """Wait until HOST's service record was updated after SINCE (UTC,
    %Y-%m-%dT%H:%M:%S): the nova-compute started at SINCE is reporting.  Strictly
    after: the records have whole seconds, and a process killed at SINCE may
    have reported in that second.  Nova reports only after init_host (service
    start joins the service group last), so a report means the compute is ready."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            for s in services(token()):
                if s['host'] == host and s['updated_at'] and s['updated_at'][:19] > since:
                    print('%s reported at %s' % (host, s['updated_at']))
                    return
        except Exception as e:  # noqa
            print('waiting: %r' % e)
        time.sleep(1)
    sys.exit('%s did not report since %s' % (host, since))


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '--show-computes':
        show_computes()
        sys.exit(0)
    if len(sys.argv) > 3 and sys.argv[1] == '--wait-report':
        wait_report(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 60)
        sys.exit(0)
    if len(sys.argv) > 2 and sys.argv[1] == '--wait-computes':
        wait_computes(sys.argv[2].split(','),
                      int(sys.argv[3]) if len(sys.argv) > 3 else 180)
    else:
        setup()
