/**
 * One request at a time, from a separate process (so the client shares nothing with the server's event
 * loop): `tsx bench/lib/sequential-client.ts <url> <queries.json> <from> <count> [extra query string]`
 * prints the latency of each `GET /search` in milliseconds as a JSON array. Keep-alive, like a real client.
 */

import { readFileSync } from 'node:fs';
import { Agent, get } from 'node:http';

const [url, queriesFile, from, count, extra] = process.argv.slice(2);
const queries = (JSON.parse(readFileSync(queriesFile!, 'utf8')) as string[]).slice(Number(from), Number(from) + Number(count));
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function request(q: string): Promise<number> {
  const t = performance.now();
  return new Promise((resolve, reject) => {
    get(`${url}/search?q=${encodeURIComponent(q)}${extra ? `&${extra}` : ''}`, { agent }, (res) => {
      res.on('data', () => {});
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t) : reject(new Error(`GET /search answered ${res.statusCode}`))));
    }).on('error', reject);
  });
}

const ms: number[] = [];
for (const q of queries.slice(0, 5)) await request(`${q} warm`);
for (const q of queries) ms.push(await request(q));
agent.destroy();
process.stdout.write(JSON.stringify(ms));
