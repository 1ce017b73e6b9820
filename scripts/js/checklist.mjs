// The check recorder the Node client tests share: each check prints PASS or FAIL (with the
// detail of a failure); summary() prints "N passed, M failed" and returns the exit status.

export function checklist() {
  let passed = 0;
  let failed = 0;
  const check = (name, ok, detail) => {
    if (ok) {
      passed++;
      console.log(`PASS ${name}`);
    } else {
      failed++;
      console.log(`FAIL ${name}`);
      if (detail !== undefined) console.log(`  ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    }
  };
  const summary = () => {
    console.log(`${passed} passed, ${failed} failed`);
    return failed ? 1 : 0;
  };
  return { check, summary };
}
