// Starts kinesalite on loopback only and prints the chosen port on stdout
// as a single line "PORT <n>". Exits when stdin closes or on SIGTERM; exits 1
// with a one-line message when it cannot listen (KINESALITE_PORT in use).
'use strict';
const kinesalite = require('kinesalite');

const server = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 1000 });
const port = Number(process.env.KINESALITE_PORT || 0);
server.on('error', (err) => {
  console.error(`kinesalite: cannot listen on 127.0.0.1:${port}: ${err.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  console.log(`PORT ${server.address().port}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (process.env.KINESALITE_EXIT_ON_STDIN_CLOSE !== '0') {
  process.stdin.on('end', stop);
  process.stdin.resume();
}
