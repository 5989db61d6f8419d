// The old system's read path, the baseline of scripts/bench-http.sh: Express and node-redis with
// the old `getOrSetCache(key, fn)` helper (GET the key; a hit is JSON.parse'd and returned; a
// miss runs fn and caches its value with SETEX), no authentication at all.
//
//   REDIS_URL=redis://127.0.0.1:6379 PORT=3901 QUESTIONS=questions.json node server.js
//
// GET /exams/:id/questions answers the JSON of the file QUESTIONS (scripts/bench-http.sh writes
// there what oes answers for the same read, so both send the same 20 questions); the file stands
// in for the old system's database, read on a miss only. `x-cache` says hit or miss.
'use strict';

const fs = require('node:fs');
const express = require('express');
const { createClient } = require('redis');

const PORT = Number(process.env.PORT || 3901);
const TTL_SECONDS = 7200;
const questions = fs.readFileSync(process.env.QUESTIONS || 'questions.json', 'utf8');

const redisClient = createClient({ url: process.env.REDIS_URL || 'redis://127.0.0.1:6379' });
redisClient.on('error', (error) => console.error('redis:', error.message));

// The old helper, as it was; `seen.hit` only reports which branch ran.
async function getOrSetCache(key, fn, seen = {}) {
  const data = await redisClient.get(key);
  if (data != null) {
    seen.hit = true;
    return JSON.parse(data);
  }
  const fresh = await fn();
  await redisClient.setEx(key, TTL_SECONDS, JSON.stringify(fresh));
  return fresh;
}

// The "database" read of a miss.
async function loadQuestions() {
  return JSON.parse(questions);
}

const app = express();
app.get('/exams/:id/questions', async (req, res) => {
  try {
    const seen = {};
    const body = await getOrSetCache(`baseline:exam:${req.params.id}:questions`, loadQuestions, seen);
    res.set('x-cache', seen.hit ? 'hit' : 'miss').json(body);
  } catch (error) {
    res.status(500).json({ error: error.message });
  }
});

redisClient.connect().then(() => {
  const server = app.listen(PORT, '127.0.0.1', () => console.log(`baseline: listening on ${PORT}`));
  process.on('SIGTERM', () => {
    server.close();
    redisClient.quit().finally(() => process.exit(0));
  });
});
