import { h } from '../lib/dom.js';

export default {
  path: '/tracks/:id',
  title: 'track',
  async render(main) {
    main.append(h('h1', null, 'track'));
  },
};
